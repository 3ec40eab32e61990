//! The local API: the dashboard routes and the protected API, with the real
//! handlers and the real authorizer, on one loopback port; and the keys page
//! (the `<prolinksqr-api-keys>` demo) on another, its own origin.
//!
//! ```text
//! local-api [--port N] [--page-port N | --no-page] [--dynamodb URL] [--table NAME] [--github-keys-url URL]
//! local-api token SUB        print an unsigned dashboard token for SUB
//! ```
//!
//! Environment: `PORT` (default 3000), `PAGE_PORT` (default 5173; the page
//! is at `http://localhost:PAGE_PORT/`), `DYNAMODB_ENDPOINT` (default: the
//! embedded in-memory store, whose state is lost on exit), `TABLE_NAME`
//! (default `prolinksqr-keys`), `DASHBOARD_ORIGIN` (default the page's
//! origin, `http://localhost:5173`), `ACCOUNT_ID_CLAIM` (default `sub`),
//! `MAX_KEYS_PER_ACCOUNT` (default 100), `LAST_USED_INTERVAL_SECONDS`
//! (default 300), `GITHUB_KEYS_URL` (GitHub's secret-scanning keys; default
//! GitHub's own URL).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use apikeys::dynamo::{ClientSettings, DynamoStore};
use apikeys::{KeyStore, MemoryStore};
use keys_api::ApiConfig;
use local_stack::store::RecreatingStore;
use local_stack::{LocalApi, http, jwt};
use tokio::net::TcpListener;

struct Options {
    port: u16,
    /// The keys page's port; `None`: not served.
    page_port: Option<u16>,
    dynamodb: Option<String>,
    table: String,
    github_keys_url: String,
    /// `--authorizer-cache-ttl` (else `AUTHORIZER_CACHE_TTL`, read with the
    /// authorizer's other settings).
    cache_ttl: Option<String>,
}

fn usage() -> &'static str {
    "usage: local-api [--port N] [--page-port N | --no-page] [--dynamodb URL] [--table NAME] [--github-keys-url URL] [--authorizer-cache-ttl SECONDS]\n       local-api token SUB"
}

/// The options, or `None` when help was asked for.
fn options() -> Result<Option<Options>, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = Options {
        port: match env("PORT") {
            Some(p) => p
                .parse()
                .map_err(|_| format!("PORT={p} is not a port number"))?,
            None => 3000,
        },
        page_port: match env("PAGE_PORT") {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| format!("PAGE_PORT={p} is not a port number"))?,
            ),
            None => Some(5173),
        },
        dynamodb: env("DYNAMODB_ENDPOINT"),
        table: env("TABLE_NAME").unwrap_or_else(|| "prolinksqr-keys".to_owned()),
        github_keys_url: env("GITHUB_KEYS_URL")
            .unwrap_or_else(|| secret_scanning::keys::GITHUB_KEYS_URL.to_owned()),
        cache_ttl: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or(format!("{name} needs a value\n{}", usage()))
        };
        match arg.as_str() {
            "--port" => {
                o.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port takes a port number".to_owned())?
            }
            "--page-port" => {
                o.page_port = Some(
                    value("--page-port")?
                        .parse()
                        .map_err(|_| "--page-port takes a port number".to_owned())?,
                )
            }
            "--no-page" => o.page_port = None,
            "--dynamodb" => o.dynamodb = Some(value("--dynamodb")?),
            "--table" => o.table = value("--table")?,
            "--github-keys-url" => o.github_keys_url = value("--github-keys-url")?,
            "--authorizer-cache-ttl" => o.cache_ttl = Some(value("--authorizer-cache-ttl")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(Some(o))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("token") {
        return match args.get(2) {
            Some(sub) => {
                println!("{}", jwt::unsigned_token(sub));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{}", usage());
                ExitCode::FAILURE
            }
        };
    }
    let opts = match options() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    lambda_support::logging::init();
    let origin = std::env::var("DASHBOARD_ORIGIN")
        .unwrap_or_else(|_| format!("http://localhost:{}", opts.page_port.unwrap_or(5173)));
    let claim = std::env::var("ACCOUNT_ID_CLAIM").unwrap_or_else(|_| "sub".to_owned());
    let max_keys = std::env::var("MAX_KEYS_PER_ACCOUNT")
        .ok()
        .filter(|v| !v.is_empty())
        .map_or(Ok(keys_api::DEFAULT_MAX_KEYS), |v| v.parse());
    let config = match (ApiConfig::new(&claim, &origin), max_keys) {
        (Ok(c), Ok(n)) => match c.with_max_keys(n) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("local-api: {e}");
                return ExitCode::FAILURE;
            }
        },
        (Err(e), _) => {
            eprintln!("local-api: {e}");
            return ExitCode::FAILURE;
        }
        (_, Err(_)) => {
            eprintln!("local-api: MAX_KEYS_PER_ACCOUNT must be a whole number from 1 up");
            return ExitCode::FAILURE;
        }
    };
    let github = match secret_scanning::GithubKeys::new(&opts.github_keys_url) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("local-api: --github-keys-url: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = match authorizer::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = match opts.cache_ttl.as_deref().map(str::parse::<u32>) {
        None => settings,
        Some(Ok(ttl)) if ttl <= authorizer::MAX_CACHE_TTL => match settings.with_cache_ttl(ttl) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("local-api: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(_) => {
            eprintln!("local-api: --authorizer-cache-ttl takes whole seconds from 0 to 3600");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("local-api: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // With caching on, narrowing changes flush the emulated cache through the
    // AWS SDK, at this very API, as the deployed functions flush API Gateway's.
    let config = match listener.local_addr() {
        Ok(a) if settings.cache_ttl > 0 => config.with_cache_flush(
            LocalApi::<MemoryStore>::cache_flush_for(&format!("http://{a}")).await,
        ),
        _ => config,
    };
    let page = match opts.page_port {
        Some(port) => page_listener(port).await,
        None => None,
    };
    match &opts.dynamodb {
        None => {
            run(
                listener,
                page,
                LocalApi::new(MemoryStore::new(), config)
                    .with_authorizer_settings(settings)
                    .with_github_keys(github),
                "embedded in-memory store (state is lost on exit)".to_owned(),
            )
            .await
        }
        Some(endpoint) => match dynamo_store(endpoint, &opts.table).await {
            Ok(store) => {
                let what = format!("DynamoDB at {endpoint}, table {}", opts.table);
                let api = LocalApi::new(store, config)
                    .with_authorizer_settings(settings)
                    .with_github_keys(github);
                run(listener, page, api, what).await
            }
            Err(msg) => {
                eprintln!("local-api: {msg}");
                ExitCode::FAILURE
            }
        },
    }
}

/// A store on `endpoint` (DynamoDB Local, or any endpoint), creating the table if missing.
async fn dynamo_store(endpoint: &str, table: &str) -> Result<RecreatingStore, String> {
    // A developer's DynamoDB Local can be slow from cold: room for that at
    // start; then requests fail fast when it is down (see LOCAL_API).
    let setup = ClientSettings::LOCAL.client_for_endpoint(endpoint).await;
    apikeys::table::create_table(&setup, table)
        .await
        .map_err(|e| {
            format!(
                "cannot use table {table} at {endpoint}: {}",
                apikeys::error_chain(&e)
            )
        })?;
    let client = ClientSettings::LOCAL_API
        .client_for_endpoint(endpoint)
        .await;
    Ok(RecreatingStore(
        DynamoStore::new(client, table).with_write_settings(ClientSettings::LOCAL_API),
    ))
}

/// The keys page's listener on loopback, or `None` (said) when the port is taken:
/// the API serves without it.
async fn page_listener(port: u16) -> Option<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("local-api: the keys page is not served: cannot listen on {addr}: {e}");
            None
        }
    }
}

async fn run<S: KeyStore + 'static>(
    listener: TcpListener,
    page: Option<TcpListener>,
    api: LocalApi<S>,
    store: String,
) -> ExitCode {
    let stop = stop_signal();
    let base = match listener.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(_) => "http://127.0.0.1".to_owned(),
    };
    tracing::warn!(
        "dashboard identity: the Authorization bearer JWT's payload is decoded and NOT verified (local only)"
    );
    let token = jwt::unsigned_token("demo-account");
    println!("ProLinksQR local API listening on {base}");
    println!("  store: {store}");
    if let Some(page) = page {
        if let Ok(a) = page.local_addr() {
            println!(
                "  keys page: http://localhost:{}/  (the <prolinksqr-api-keys> demo, on its own origin; calls this API cross-origin)",
                a.port()
            );
        }
        tokio::spawn(http::serve_page(page, base.clone(), std::future::pending()));
    }
    println!(
        "  dashboard API: {base}/apikeys  (identity: the unverified JWT in Authorization: Bearer, local only)"
    );
    match api.authorizer_cache() {
        None => println!(
            "  protected API: {base}/links, /folders, /templates, /bulk/links, /cafe/menus …  (x-api-key or Authorization: Bearer key-…)"
        ),
        Some(cache) => {
            println!(
                "  protected API: {base}/links, /folders, /templates, /bulk/links, /cafe/menus …  (x-api-key only: it is the cache's identity source)"
            );
            println!(
                "  authorizer cache: on, TTL {} s; narrowing changes flush it at {base}/restapis/{}/stages/{}/cache/authorizers",
                cache.ttl().as_secs(),
                local_stack::API_ID,
                local_stack::STAGE
            );
        }
    }
    println!();
    println!("Try it:");
    println!("  TOKEN={token}");
    println!(
        "  curl -s -X POST {base}/apikeys -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"name\":\"demo\",\"scopes\":[\"links.read\"]}}'"
    );
    println!("  curl -s {base}/links/abc -H 'x-api-key: key-…'");
    println!();
    println!("Ctrl-C (or SIGTERM) stops it.");
    let api = Arc::new(api);
    api.spawn_expiry_sweep();
    http::serve(listener, api, stop).await;
    println!("local API stopped");
    ExitCode::SUCCESS
}

/// Ctrl-C (SIGINT) or SIGTERM: either stops the server the same clean way.
/// Both handlers are installed now, before the banner says the API listens,
/// so a signal sent right after that line is never the default action.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    async move {
        match (int, term) {
            (Some(mut int), Some(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
