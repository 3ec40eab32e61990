//! Records as the dashboard API returns them: id, name, prefix, masked,
//! scopes, active, createdAt, updatedAt, expiresAt. Never the hash, the
//! account or the creator; the key itself only in [`created`].

use apikeys::model::format_timestamp;
use apikeys::{ApiKey, KeyRecord};
use serde_json::{Value, json};

/// The public form of a record.
pub fn record(r: &KeyRecord) -> Value {
    json!({
        "id": r.id.as_str(),
        "name": r.name.as_str(),
        "prefix": r.prefix,
        "masked": r.masked(),
        "scopes": r.scopes,
        "active": r.active,
        "createdAt": format_timestamp(&r.created_at),
        "updatedAt": format_timestamp(&r.updated_at),
        "expiresAt": r.expires_at.as_ref().map(format_timestamp),
    })
}

/// The create response: the record and, this once, the full key.
pub fn created(r: &KeyRecord, key: &ApiKey) -> Value {
    let mut v = record(r);
    if let Value::Object(map) = &mut v {
        map.insert(
            "key".to_owned(),
            Value::String(key.expose_secret().to_owned()),
        );
    }
    v
}
