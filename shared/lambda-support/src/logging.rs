//! Tracing set-up shared by the functions (and the local API).
//!
//! Levels come from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else
//! INFO; the format is JSON when `AWS_LAMBDA_LOG_FORMAT=JSON` (Lambda's JSON
//! logging). Whatever those say, every dependency is capped at DEBUG: at TRACE
//! `lambda_runtime` logs the raw event (headers with the key included) and
//! the AWS SDK logs request bodies (the key hash). Only this project's crates
//! may log at TRACE, and they never log a key, a hash or a header value.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// This project's libraries (as tracing targets); with every function of
/// [`function_table::FUNCTIONS`], the only targets allowed TRACE.
const OWN_LIBRARIES: &[&str] = &[
    "apikeys",
    "scopes",
    "authorizer_cache",
    "keys_api",
    "lambda_support",
    "local_stack",
];

/// `lambda_runtime` logs, at ERROR and under this target, every error a
/// handler returns (`error!("{error:?}")`, a message and nothing else) and
/// every panic (`error!(?error, "user handler panicked")`, with an `error`
/// field). The authorizer answers every 401 with an error (`Unauthorized`,
/// as API Gateway requires): the first would log each bad key a bot sends as
/// an ERROR. Each handler logs its own failures with their cause, so the
/// runtime's echo of a returned error is dropped; its panic lines are kept.
const RUNTIME_ERRORS: &str = "lambda_runtime::layers::panic";

/// Whether the runtime's per-invocation span (`Lambda runtime invoke`, made
/// by `lambda_runtime`'s tracing layer for every event) is made at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationSpan {
    Made,
    /// Not made: a few microseconds less per call (making and entering it
    /// on every poll; measured, BENCHMARKS.md). For a function whose own
    /// lines carry the request id: the authorizer, on every API call.
    Off,
}

/// The target of the runtime's per-invocation span (`layers::trace`, which
/// logs no event of its own).
const INVOCATION_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// The filter [`InvocationSpan::Off`] adds: that one target off.
fn invocation_span_off() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target(INVOCATION_SPAN_TARGET, LevelFilter::OFF)
}

/// Whether an event is the runtime's echo of an error a handler returned.
pub fn is_returned_error_echo(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == RUNTIME_ERRORS && meta.is_event() && meta.fields().field("error").is_none()
}

/// The cap: DEBUG for everything but this project's crates.
pub fn dependency_cap() -> Targets {
    let functions = function_table::FUNCTIONS.iter().map(|f| f.target());
    OWN_LIBRARIES
        .iter()
        .map(|l| (*l).to_owned())
        .chain(functions)
        .fold(
            Targets::new().with_default(LevelFilter::DEBUG),
            |t, target| t.with_target(target, LevelFilter::TRACE),
        )
}

/// The level filter the environment asks for.
pub fn env_filter() -> Targets {
    let from_lambda = || {
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| l.to_ascii_lowercase())
    };
    let directives = std::env::var("RUST_LOG")
        .ok()
        .or_else(from_lambda)
        .unwrap_or_else(|| "info".to_owned());
    targets(&directives)
}

/// `RUST_LOG`-style directives (`info`, `apikeys=trace,warn`: a level, or
/// a target and its level; the last default wins) as a filter, INFO where
/// none is said. A directive that does not parse is skipped, as the others
/// still say what was meant. Targets only, without `EnvFilter`'s span and
/// field matching, which would bring a regex engine into every function.
pub fn targets(directives: &str) -> Targets {
    directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| d.parse::<Targets>().ok())
        .fold(
            Targets::new().with_default(LevelFilter::INFO),
            |all, one| {
                let all = match one.default_level() {
                    Some(level) => all.with_default(level),
                    None => all,
                };
                all.with_targets(one)
            },
        )
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    init_with(InvocationSpan::Made);
}

/// [`init`], with the runtime's per-invocation span as `span` says.
pub fn init_with(span: InvocationSpan) {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry()
        .with(dependency_cap())
        .with(env_filter())
        .with((span == InvocationSpan::Off).then(invocation_span_off))
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !is_returned_error_echo(meta)
        }));
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(false))
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::{invocation_span_off, targets};
    use tracing::Level;

    #[test]
    fn the_runtime_span_alone_can_be_turned_off() {
        let off = invocation_span_off();
        assert!(!off.would_enable("lambda_runtime::layers::trace", &Level::ERROR));
        assert!(off.would_enable("lambda_runtime", &Level::TRACE));
        assert!(off.would_enable("lambda_runtime::layers::api_response", &Level::TRACE));
        assert!(off.would_enable("authorizer", &Level::TRACE));
        // As the runtime makes it: an INFO span under that target.
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(off);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke");
            assert!(span.is_disabled());
            assert!(!tracing::info_span!(target: "authorizer", "other").is_disabled());
        });
    }

    #[test]
    fn directives_set_levels_by_target_and_skip_what_does_not_parse() {
        let t = targets("");
        assert!(t.would_enable("anything", &Level::INFO));
        assert!(!t.would_enable("anything", &Level::DEBUG));
        let t = targets("trace");
        assert!(t.would_enable("anything", &Level::TRACE));
        let t = targets("warn,apikeys=trace");
        assert!(t.would_enable("apikeys::store", &Level::TRACE));
        assert!(!t.would_enable("hyper", &Level::INFO));
        assert!(t.would_enable("hyper", &Level::WARN));
        let t = targets("apikeys=debug,nonsense=[{x}],error");
        assert!(t.would_enable("apikeys", &Level::DEBUG));
        assert!(!t.would_enable("other", &Level::WARN));
        assert!(t.would_enable("other", &Level::ERROR));
        let t = targets("off");
        assert!(!t.would_enable("anything", &Level::ERROR));
    }
}
