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
