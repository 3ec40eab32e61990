//! Bad input always gets a clear 4xx JSON error: random bodies, content
//! types, ids, queries and If-Match values never produce a 5xx or a panic,
//! and a refused request never writes.

use apikeys::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::dashboard::*;

fn body() -> impl Strategy<Value = Option<String>> {
    let fragment = prop_oneof![
        Just(r#"{"name":"x","scopes":["links.read"]}"#.to_owned()),
        Just(r#"{"name":"","scopes":[]}"#.to_owned()),
        Just(r#"{"active":false}"#.to_owned()),
        Just(r#"{"scopes":["all","nope"],"expiresAt":"2001-01-01T00:00:00Z"}"#.to_owned()),
        Just(r#"{"name":null,"scopes":null,"active":null,"expiresAt":null}"#.to_owned()),
        Just(r#"{"name":{"a":1},"scopes":[[]],"active":"yes"}"#.to_owned()),
        Just(
            r#"{"name":"x","scopes":["links.read"],"expiresAt":"9999-12-31T23:59:59Z"}"#.to_owned()
        ),
        Just(
            r#"{"name":"x","scopes":["links.read"],"expiresAt":"+275760-09-13T00:00:00Z"}"#
                .to_owned()
        ),
        Just("[]".to_owned()),
        Just("null".to_owned()),
        Just("1e999".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        "\\PC{0,40}",
        "[{}\\[\\]\":,a-z0-9 ]{0,60}",
    ];
    proptest::option::weighted(0.9, fragment)
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just("text/plain".to_owned()),
        Just("APPLICATION/JSON".to_owned()),
        "[ -~]{0,20}",
    ])
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("7QbZ2kVnR4xW9pLmT3sHcA".to_owned()),
        "[ -~]{0,30}",
        "\\PC{0,10}"
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![Just("50".to_owned()), "[0-9-]{0,6}", "[ -~]{0,30}"]
}

#[test]
fn no_input_gets_a_5xx_or_a_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let strategy = (
        proptest::sample::select(operations()),
        body(),
        content_type(),
        id(),
        query_value(),
        query_value(),
        proptest::option::of("[ -~]{0,12}"),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 1500,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |(op, body, ct, id, limit, token, if_match)| {
            let mut ev = sample(op);
            set_body(&mut ev, body.as_deref());
            set_header(&mut ev, "Content-Type", ct.as_deref());
            set_header(&mut ev, "If-Match", if_match.as_deref());
            if op != "createKey" && op != "listKeys" {
                set_id(&mut ev, &id);
            }
            if op == "listKeys" {
                set_query(&mut ev, &[("limit", &limit), ("nextToken", &token)]);
            }
            // Some generated strings cannot travel in an event at all; API Gateway would not send them.
            let Ok(req) = lambda_http::request::from_str(&ev.to_string()) else {
                return Ok(());
            };
            let before = store.all_records();
            let resp = rt.block_on(async {
                let cfg = config();
                local_stack::dashboard_handler(op, &store, &cfg, req)
                    .await
                    .unwrap_or_else(|| panic!("no handler for {op}"))
            });
            let status = resp.status().as_u16();
            prop_assert!(status < 500, "{op}: {status} {}", json_body(&resp));
            if status >= 400 {
                let body = json_body(&resp);
                prop_assert!(
                    body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                    "{body}"
                );
                prop_assert_eq!(store.all_records(), before, "a refused request wrote");
            }
            prop_assert!(resp.headers().contains_key("access-control-allow-origin"));
            Ok(())
        })
        .unwrap();
    // The run reached the store's happy paths too, not only refusals.
    assert!(!store.all_records().is_empty());
}
