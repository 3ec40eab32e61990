//! IAM policy evaluation for `execute-api:Invoke` on method ARNs, as API
//! Gateway applies a Lambda authorizer's policy.
//!
//! Rules (IAM's, restricted to what an authorizer policy can say):
//! - an explicit `Deny` that matches wins;
//! - otherwise a matching `Allow` allows;
//! - otherwise the request is denied (implicit deny);
//! - `Action` and `Resource` are a string or a list of strings;
//! - in `Resource`, `*` matches any run of characters (`/` included) and `?`
//!   exactly one; matching is case-sensitive;
//! - in `Action`, the same wildcards apply; IAM compares action names
//!   case-insensitively (`execute-api:invoke` is `execute-api:Invoke`), and so do we;
//! - a statement this evaluator cannot judge (it has a `Condition`, `NotAction`
//!   or `NotResource`) never allows: as an `Allow` it is ignored, as a `Deny`
//!   it applies. Unknown statements fail closed.

use serde::Deserialize;

/// The action API Gateway checks an authorizer policy for.
pub const INVOKE: &str = "execute-api:Invoke";

/// An IAM policy document as an authorizer returns it (`policyDocument`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub effect: Effect,
    #[serde(default, deserialize_with = "one_or_many")]
    pub action: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub resource: Vec<String>,
    #[serde(default)]
    pub condition: Option<serde_json::Value>,
    #[serde(default)]
    pub not_action: Option<serde_json::Value>,
    #[serde(default)]
    pub not_resource: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// The outcome of evaluating a policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No statement allowed the request.
    ImplicitDeny,
}

impl Statement {
    fn unjudgeable(&self) -> bool {
        self.condition.is_some() || self.not_action.is_some() || self.not_resource.is_some()
    }

    fn matches(&self, action: &str, resource: &str) -> bool {
        self.action.iter().any(|p| wildcard_match(p, action, true))
            && self
                .resource
                .iter()
                .any(|p| wildcard_match(p, resource, false))
    }
}

/// Evaluates `policy` for `action` on `resource` (a method ARN).
pub fn evaluate(policy: &PolicyDocument, action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for st in &policy.statement {
        match st.effect {
            Effect::Deny if st.unjudgeable() || st.matches(action, resource) => {
                return Decision::ExplicitDeny;
            }
            Effect::Allow if !st.unjudgeable() && st.matches(action, resource) => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Parses a policy document from JSON and evaluates it for `execute-api:Invoke`.
pub fn evaluate_json(
    policy: &serde_json::Value,
    resource: &str,
) -> Result<Decision, serde_json::Error> {
    let doc = PolicyDocument::deserialize(policy)?;
    Ok(evaluate(&doc, INVOKE, resource))
}

/// IAM wildcard matching: `*` any run of characters (including none and `/`),
/// `?` exactly one character. Linear-time greedy matcher with one backtrack
/// point; no allocation.
fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let pat = pattern.as_bytes();
    let txt = text.as_bytes();
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Bytes throughout; `?` and a `*` backtrack step a whole UTF-8 character.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < txt.len() {
        if pi < pat.len() && pat[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < pat.len() && pat[pi] == b'?' {
            pi += 1;
            ti += utf8_len(txt[ti]);
        } else if pi < pat.len() && eq(pat[pi], txt[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            let next = st + utf8_len(txt[st]);
            star = Some((sp, next));
            pi = sp + 1;
            ti = next;
        } else {
            return false;
        }
    }
    pat[pi..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decide(policy: serde_json::Value, arn: &str) -> Decision {
        evaluate_json(&policy, arn).unwrap()
    }

    fn allow(resource: serde_json::Value) -> serde_json::Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": resource}
        ]})
    }

    /// AWS documentation, "IAM policy examples for API execution permissions":
    /// any POST along my-demo-resource-path in stage test of API a123456789 in us-east-1.
    #[test]
    fn aws_example_post_along_a_path_in_one_stage() {
        let p = allow(json!([
            "arn:aws:execute-api:us-east-1:*:a123456789/test/POST/my-demo-resource-path/*"
        ]));
        let ok = "arn:aws:execute-api:us-east-1:111122223333:a123456789/test/POST/my-demo-resource-path/child";
        let deeper = "arn:aws:execute-api:us-east-1:111122223333:a123456789/test/POST/my-demo-resource-path/a/b";
        assert_eq!(decide(p.clone(), ok), Decision::Allow);
        assert_eq!(decide(p.clone(), deeper), Decision::Allow, "* crosses /");
        for other in [
            "arn:aws:execute-api:us-east-1:111122223333:a123456789/test/GET/my-demo-resource-path/child",
            "arn:aws:execute-api:us-east-1:111122223333:a123456789/prod/POST/my-demo-resource-path/child",
            "arn:aws:execute-api:us-west-2:111122223333:a123456789/test/POST/my-demo-resource-path/child",
            "arn:aws:execute-api:us-east-1:111122223333:b987654321/test/POST/my-demo-resource-path/child",
            "arn:aws:execute-api:us-east-1:111122223333:a123456789/test/POST/my-demo-resource-path",
        ] {
            assert_eq!(decide(p.clone(), other), Decision::ImplicitDeny, "{other}");
        }
    }

    /// AWS documentation: any method on petstorewalkthrough/pets, any stage, any region.
    #[test]
    fn aws_example_any_method_on_one_path_in_any_stage() {
        let p = allow(json!([
            "arn:aws:execute-api:*:*:a123456789/*/*/petstorewalkthrough/pets"
        ]));
        for ok in [
            "arn:aws:execute-api:eu-west-1:111122223333:a123456789/prod/GET/petstorewalkthrough/pets",
            "arn:aws:execute-api:us-east-1:111122223333:a123456789/test/DELETE/petstorewalkthrough/pets",
        ] {
            assert_eq!(decide(p.clone(), ok), Decision::Allow, "{ok}");
        }
        assert_eq!(
            decide(
                p.clone(),
                "arn:aws:execute-api:us-east-1:1:a123456789/test/GET/petstorewalkthrough/pets/1"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(
                p,
                "arn:aws-cn:execute-api:cn-north-1:1:a123456789/test/GET/petstorewalkthrough/pets"
            ),
            Decision::ImplicitDeny,
            "the partition is part of the ARN"
        );
    }

    /// AWS documentation (China regions): the same policy in the aws-cn partition.
    #[test]
    fn aws_example_in_the_china_partition() {
        let p = allow(json!([
            "arn:aws-cn:execute-api:us-east-1:*:a123456789/test/POST/my-demo-resource-path/*"
        ]));
        assert_eq!(
            decide(
                p,
                "arn:aws-cn:execute-api:us-east-1:1:a123456789/test/POST/my-demo-resource-path/x"
            ),
            Decision::Allow
        );
    }

    #[test]
    fn a_wildcard_in_the_middle_covers_any_depth() {
        // `*` is not a single-segment wildcard: GET/user/* also covers GET/user/1/sensitive.
        let p = allow(json!("arn:aws:execute-api:r:a:api/stage/GET/user/*"));
        assert_eq!(
            decide(
                p.clone(),
                "arn:aws:execute-api:r:a:api/stage/GET/user/1/sensitive"
            ),
            Decision::Allow
        );
        let p = allow(json!("arn:aws:execute-api:r:a:api/stage/GET/foo/*/allowed"));
        assert_eq!(
            decide(
                p.clone(),
                "arn:aws:execute-api:r:a:api/stage/GET/foo/1/allowed"
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(p, "arn:aws:execute-api:r:a:api/stage/GET/foo/1/other"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        let p = allow(json!("arn:aws:execute-api:r:a:api/s/GET/links/?"));
        assert_eq!(
            decide(p.clone(), "arn:aws:execute-api:r:a:api/s/GET/links/x"),
            Decision::Allow
        );
        assert_eq!(
            decide(p.clone(), "arn:aws:execute-api:r:a:api/s/GET/links/é"),
            Decision::Allow
        );
        assert_eq!(
            decide(p.clone(), "arn:aws:execute-api:r:a:api/s/GET/links/"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(p, "arn:aws:execute-api:r:a:api/s/GET/links/xy"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn resources_match_case_sensitively() {
        let p = allow(json!("arn:aws:execute-api:r:a:api/s/GET/links"));
        assert_eq!(
            decide(p.clone(), "arn:aws:execute-api:r:a:api/s/GET/links"),
            Decision::Allow
        );
        assert_eq!(
            decide(p.clone(), "arn:aws:execute-api:r:a:api/s/get/links"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(p, "arn:aws:execute-api:r:a:api/s/GET/Links"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn explicit_deny_wins_over_allow_in_any_order() {
        let arn = "arn:aws:execute-api:r:a:api/s/DELETE/links/1";
        for statements in [
            json!([{"Effect": "Allow", "Action": "*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": arn}]),
            json!([{"Effect": "Deny", "Action": "execute-api:*", "Resource": "arn:aws:execute-api:*:*:*/*/DELETE/*"},
                   {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": arn}]),
        ] {
            assert_eq!(
                decide(json!({"Statement": statements}), arn),
                Decision::ExplicitDeny
            );
        }
    }

    #[test]
    fn no_statement_or_no_match_is_an_implicit_deny() {
        assert_eq!(
            decide(
                json!({"Statement": []}),
                "arn:aws:execute-api:r:a:api/s/GET/links"
            ),
            Decision::ImplicitDeny
        );
        let p =
            json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}});
        assert_eq!(
            decide(p, "arn:aws:execute-api:r:a:api/s/GET/links"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn action_and_resource_may_be_strings_or_lists() {
        let arn = "arn:aws:execute-api:r:a:api/s/GET/links";
        for action in [
            json!("execute-api:Invoke"),
            json!(["execute-api:Invoke"]),
            json!("execute-api:*"),
            json!("*"),
            json!(["s3:*", "execute-api:invoke"]),
        ] {
            let p =
                json!({"Statement": [{"Effect": "Allow", "Action": action, "Resource": [arn]}]});
            assert_eq!(decide(p, arn), Decision::Allow);
        }
        let p = json!({"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ["arn:x", arn]}]});
        assert_eq!(decide(p, arn), Decision::Allow);
    }

    #[test]
    fn statements_it_cannot_judge_fail_closed() {
        let arn = "arn:aws:execute-api:r:a:api/s/GET/links";
        let cond_allow = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4/32"}}}]});
        assert_eq!(decide(cond_allow, arn), Decision::ImplicitDeny);
        let not_res_deny = json!({"Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "NotResource": "arn:x"}]});
        assert_eq!(decide(not_res_deny, arn), Decision::ExplicitDeny);
    }

    #[test]
    fn malformed_policies_are_errors() {
        assert!(
            evaluate_json(
                &json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}),
                "x"
            )
            .is_err()
        );
        assert!(evaluate_json(&json!({"NoStatement": []}), "x").is_err());
    }

    #[test]
    fn wildcard_matcher_edge_cases() {
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("", "", false));
        assert!(!wildcard_match("", "a", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
        assert!(wildcard_match("**", "abc", false));
        assert!(wildcard_match("*?", "a", false));
        assert!(!wildcard_match("*?", "", false));
        assert!(wildcard_match("a*a*a", "aaaaa", false));
    }
}
