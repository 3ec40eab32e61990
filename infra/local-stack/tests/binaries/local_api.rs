//! The README's run command's binary: it starts, prints where it listens and
//! what it runs on, answers, and stops cleanly on Ctrl-C (SIGINT).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use local_stack::jwt;
use local_stack::testing::request;
use serde_json::json;

use super::Lines;

/// Starts the binary on a free port; returns it, its output lines after the
/// "listening on" line, and its base URL.
async fn start() -> (tokio::process::Child, Lines, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .args(["--port", "0"])
        .env_remove("DYNAMODB_ENDPOINT")
        .env_remove("PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (lines, base) = super::listening(&mut child, Duration::from_secs(20)).await;
    (child, lines, base)
}

/// Sends `signal` to the child, waits for it to exit successfully, and
/// returns the rest of its output.
async fn stop(mut child: tokio::process::Child, mut lines: Lines, signal: &str) -> Vec<String> {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.contains("local API stopped")),
        "{rest:?}"
    );
    rest
}

#[tokio::test]
async fn the_local_api_binary_starts_answers_and_stops_on_ctrl_c() {
    let (child, mut lines, base) = start().await;
    let mut banner = Vec::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
    {
        banner.push(line);
    }
    assert!(
        banner
            .iter()
            .any(|l| l.contains("in-memory") && l.contains("lost on exit")),
        "{banner:?}"
    );
    assert!(
        banner.iter().any(|l| l.contains("unverified")),
        "{banner:?}"
    );

    let token = format!("Bearer {}", jwt::unsigned_token("acct-bin"));
    let body = json!({"name": "bin", "scopes": ["folders.read"]}).to_string();
    let created = request(
        &base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &token),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        request(&base, "GET", "/folders", &[("x-api-key", &key)], None)
            .await
            .status,
        200
    );
    // Answered by the gateway's part alone: no route, no token.
    assert_eq!(request(&base, "GET", "/nope", &[], None).await.status, 403);
    assert_eq!(
        request(&base, "GET", "/apikeys", &[], None).await.status,
        401
    );
    let requests = 4;

    let rest = stop(child, lines, "-INT").await;
    // One log line per request, whoever answered it.
    let logged = banner
        .iter()
        .chain(&rest)
        .filter(|l| l.contains(" INFO "))
        .count();
    assert_eq!(logged, requests, "{banner:#?}\n{rest:#?}");
}

#[tokio::test]
async fn sigterm_stops_it_as_cleanly_as_ctrl_c() {
    let (child, lines, _) = start().await;
    stop(child, lines, "-TERM").await;
}

#[tokio::test]
async fn help_goes_to_stdout_and_exits_0() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("usage: local-api"), "{stdout}");
    assert!(out.stderr.is_empty());
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .arg("--bogus")
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success(), "an unknown argument is an error");
}

#[tokio::test]
async fn the_token_subcommand_prints_a_token_for_the_account() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .args(["token", "acct-42"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = jwt::claims_from_bearer(&format!("Bearer {}", token.trim())).unwrap();
    assert_eq!(claims["sub"], "acct-42");
}
