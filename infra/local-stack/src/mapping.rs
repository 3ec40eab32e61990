//! What the backend receives, read from the protected API's definition in
//! `template.yaml` (generated from `scopes::ROUTES` by `cargo xtask
//! generate`): the integration's `requestParameters` of each route, so
//! the local API's echo backend sees exactly what the deployed one would.

use std::collections::HashMap;

use serde_yaml_ng::Value;

/// The template the deployed stack is made from.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// Where a header's value comes from, as API Gateway's mapping names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `context.authorizer.<key>`: the authorizer's context.
    Authorizer(String),
    /// `stageVariables.<name>`.
    StageVariable(String),
    /// `'<text>'`: a fixed value.
    Literal(String),
}

/// Every route's header mapping: `(METHOD, resource)` → `(header, source)`s.
#[derive(Debug, Clone, Default)]
pub struct BackendMapping {
    routes: HashMap<(String, String), Vec<(String, Source)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("template.yaml is not YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template.yaml has no ProtectedApi DefinitionBody paths")]
    NoPaths,
    #[error("{0}: unsupported mapping source `{1}`")]
    Source(String, String),
}

impl BackendMapping {
    /// The mapping of the deployed template.
    pub fn from_template() -> Result<BackendMapping, MappingError> {
        BackendMapping::parse(TEMPLATE)
    }

    pub fn parse(template: &str) -> Result<BackendMapping, MappingError> {
        let t: Value = serde_yaml_ng::from_str(template)?;
        let paths = t["Resources"]["ProtectedApi"]["Properties"]["DefinitionBody"]["paths"]
            .as_mapping()
            .ok_or(MappingError::NoPaths)?;
        let mut routes = HashMap::new();
        for (path, ops) in paths {
            let (Some(path), Some(ops)) = (path.as_str(), ops.as_mapping()) else {
                return Err(MappingError::NoPaths);
            };
            for (method, op) in ops {
                let method = method.as_str().unwrap_or_default().to_ascii_uppercase();
                let params = op["x-amazon-apigateway-integration"]["requestParameters"]
                    .as_mapping()
                    .cloned()
                    .unwrap_or_default();
                let mut headers = Vec::new();
                for (k, v) in &params {
                    let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                        continue;
                    };
                    let Some(header) = k.strip_prefix("integration.request.header.") else {
                        continue; // path parameters: the echo backend shows the path as routed
                    };
                    let source = if let Some(key) = v.strip_prefix("context.authorizer.") {
                        Source::Authorizer(key.to_owned())
                    } else if let Some(name) = v.strip_prefix("stageVariables.") {
                        Source::StageVariable(name.to_owned())
                    } else if let Some(text) =
                        v.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
                    {
                        Source::Literal(text.to_owned())
                    } else {
                        return Err(MappingError::Source(
                            format!("{method} {path} {header}"),
                            v.to_owned(),
                        ));
                    };
                    headers.push((header.to_owned(), source));
                }
                routes.insert((method, path.to_owned()), headers);
            }
        }
        Ok(BackendMapping { routes })
    }

    /// The header mapping of one route (`None`: the template does not declare it).
    pub fn route(&self, method: &str, resource: &str) -> Option<&[(String, Source)]> {
        self.routes
            .get(&(method.to_owned(), resource.to_owned()))
            .map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_maps_every_route_of_the_table() {
        let m = BackendMapping::from_template().unwrap();
        assert_eq!(m.len(), scopes::ROUTES.len());
        for r in &scopes::ROUTES {
            let headers = m.route(r.method, r.resource).unwrap();
            assert!(headers.contains(&(
                "X-Account-Id".to_owned(),
                Source::Authorizer("accountId".to_owned())
            )));
        }
    }

    #[test]
    fn an_unknown_source_is_an_error() {
        let t = TEMPLATE.replace(
            "integration.request.header.X-Key-Id: context.authorizer.keyId",
            "integration.request.header.X-Key-Id: method.request.header.X-Key-Id",
        );
        assert!(matches!(
            BackendMapping::parse(&t),
            Err(MappingError::Source(..))
        ));
    }
}
