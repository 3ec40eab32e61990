//! Records as the dashboard API returns them: id, name, prefix, masked,
//! scopes, active, createdAt, updatedAt, expiresAt, lastUsedAt, version (the
//! `ETag`'s, for `If-Match`). Never the hash, the account or the creator; the
//! key itself only in [`created`]. And a key's audit events, and the scope
//! catalogue.

use apikeys::model::format_timestamp;
use apikeys::{ApiKey, FieldValue, KeyEvent, KeyRecord};
use scopes::Scope;
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
        "lastUsedAt": r.last_used_at.as_ref().map(format_timestamp),
        "deactivatedReason": r.deactivated_reason.map(|d| d.as_str()),
        "version": r.version,
    })
}

/// The scope catalogue as the dashboard shows it: `all`, then the groups
/// (resource, heading) with their scopes, each with what it grants.
pub fn catalogue() -> Value {
    let entry = |s: Scope| json!({"scope": s.as_str(), "label": s.label()});
    let groups: Vec<Value> = scopes::GROUPS
        .iter()
        .map(|g| {
            let members: Vec<Value> = Scope::EVERY
                .iter()
                .filter(|s| s.group() == Some(g))
                .map(|s| entry(*s))
                .collect();
            json!({"name": g.name, "label": g.label, "scopes": members})
        })
        .collect();
    json!({"all": entry(Scope::All), "groups": groups})
}

/// The public form of an audit event.
pub fn event(e: &KeyEvent) -> Value {
    let changes: serde_json::Map<String, Value> = e
        .changes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Text(t) => json!(t),
                FieldValue::Bool(b) => json!(b),
                FieldValue::Number(n) => json!(n),
                FieldValue::Scopes(sc) => json!(sc),
                FieldValue::Time(t) => json!(t.as_ref().map(format_timestamp)),
            };
            ((*k).to_owned(), v)
        })
        .collect();
    json!({
        "id": e.id.as_str(),
        "keyId": e.key_id.as_str(),
        "time": format_timestamp(&e.time),
        "action": e.action.as_str(),
        "actor": e.actor,
        "requestId": e.request_id,
        "changes": changes,
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
