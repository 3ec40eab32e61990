//! The table tools' refusals, on the real binaries: neither reaches past
//! this machine when it is not told where to go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn create_table_refuses_to_plant_the_sample_key_anywhere_but_here() {
    for endpoint in [
        None,
        Some("https://dynamodb.us-east-1.amazonaws.com"),
        Some("http://203.0.113.9:8000"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_create-table"));
        cmd.args(["prolinksqr-keys", "--sample-key"])
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local");
        match endpoint {
            Some(e) => cmd.env("AWS_ENDPOINT_URL_DYNAMODB", e),
            None => cmd.env_remove("AWS_ENDPOINT_URL_DYNAMODB"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{endpoint:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--sample-key"), "{endpoint:?}: {err}");
    }
}

#[test]
fn repair_keys_needs_a_region_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_repair-keys"))
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_REGION"));
}

/// With no region and no credentials in the environment, `create-table` and
/// `local-api --dynamodb` (the README's commands) work on DynamoDB Local and
/// never ask the EC2 instance-metadata service: its endpoint, pointed at a
/// loopback listener here, sees no connection.
#[tokio::test]
async fn the_local_tools_never_ask_instance_metadata() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dynamodb = apikeys::testing::dynamodb_local_endpoint();
    let metadata = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metadata_url = format!("http://{}", metadata.local_addr().unwrap());
    let probes = Arc::new(AtomicUsize::new(0));
    let counted = probes.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = metadata.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let home = std::env::temp_dir().join(format!("no-aws-profile-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let bare = |program: &str| {
        let mut cmd = tokio::process::Command::new(program);
        for var in [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_EC2_METADATA_DISABLED",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "DYNAMODB_ENDPOINT",
            "PORT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &home)
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata_url)
            .kill_on_drop(true);
        cmd
    };
    let table = apikeys::testing::unique_table_name("imds");

    let out = bare(env!("CARGO_BIN_EXE_create-table"))
        .arg(&table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut api = bare(env!("CARGO_BIN_EXE_local-api"))
        .args(["--port", "0", "--dynamodb", &dynamodb, "--table", &table])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_lines, base) = super::listening(&mut api, std::time::Duration::from_secs(30)).await;
    // A call that reaches the store: a key created, then listed.
    let token = format!(
        "Bearer {}",
        local_stack::jwt::unsigned_token("acct-no-imds")
    );
    let created = local_stack::testing::request(
        &base,
        "POST",
        "/apikeys",
        &[
            ("authorization", &token),
            ("content-type", "application/json"),
        ],
        Some(r#"{"name":"no metadata","scopes":["links.read"]}"#),
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    api.kill().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut api.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(probes.load(Ordering::SeqCst), 0, "{stderr}");
    assert!(!stderr.contains("imds"), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}
