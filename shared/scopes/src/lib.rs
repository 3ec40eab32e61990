//! The API-key scope catalogue, the protected API's route table and IAM
//! policy evaluation for `execute-api` method ARNs.
//!
//! Both sides of the system use this crate: the dashboard validates the
//! scopes a user gives a key against [`Scope`], the authorizer maps the route
//! API Gateway matched to the scope it needs with [`route_for_template`], and
//! the local API routes concrete paths with [`route_for_path`] and enforces
//! authorizer policies with [`policy::evaluate`].

mod routes;
mod scope;

pub mod policy;

pub use routes::{PathMatch, ROUTES, Route, granted_routes, route_for_path, route_for_template};
pub use scope::{GROUPS, Scope, ScopeGroup, ScopeSet, UnknownScope};
