//! The DynamoDB key store: one table, two items per key (see the
//! architecture document, "Data model").
//!
//! - lookup item `pk = HASH#<sha256 hex>`, `sk = HASH`: accountId, keyId, scopes, active, expiresAt;
//! - record item `pk = ACCT#<accountId>`, `sk = KEY#<keyId>`: the record, its hash and version.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Builder, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use rand::Rng;
use scopes::ScopeSet;

use crate::audit::{
    Audit, DELETED_EVENTS_KEPT, EventAction, EventId, EventPage, FieldValue, KeyEvent,
};
use crate::material::{ApiKey, KeyHash};
use crate::model::{
    AccountId, DeactivatedReason, KeyChanges, KeyId, KeyLookup, KeyName, KeyRecord, Page,
    PreviousSecret, Timestamp, format_timestamp, parse_timestamp,
};
use crate::store::{
    CreateKey, DeleteKey, ExpiryLog, GetKey, LeakOutcome, ListEvents, ListKeys, LookupKey,
    MAX_PAGE, RecordUse, RevokeLeaked, RollKey, StoreError, UpdateKey, token,
};

type Item = HashMap<String, AttributeValue>;

/// The SDK client settings the store runs with. The defaults are the
/// architecture document's for reads: connect 200 ms, attempt 500 ms,
/// operation 1.5 s, at most 2 attempts, so the authorizer's one read stays
/// fast. Transactions run with [`ClientSettings::WRITES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    /// The SDK's first retry backoff (jittered, doubling per attempt).
    pub initial_backoff: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_millis(200),
            attempt_timeout: Duration::from_millis(500),
            operation_timeout: Duration::from_millis(1500),
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
        }
    }
}

impl ClientSettings {
    /// For `TransactWriteItems`: an attempt may take far longer than a read
    /// (DynamoDB's transactions coordinate several items), and a retry of a
    /// timed-out attempt is safe because every send of one logical write
    /// carries the same `ClientRequestToken`. The caller's [`Deadline`]
    /// bounds the whole.
    ///
    /// [`Deadline`]: crate::store::Deadline
    pub const WRITES: ClientSettings = ClientSettings {
        connect_timeout: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(4),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
    };

    /// For tools and tests against DynamoDB Local, never a request path:
    /// DynamoDB Local answers slowly from cold (about 2 s) and on a loaded
    /// machine, so these allow far more than Lambda's budget.
    pub const LOCAL: ClientSettings = ClientSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
    };

    /// The local API's request path against DynamoDB Local: room for a
    /// cold DynamoDB Local, but a refused connection (DynamoDB Local
    /// stopped) fails at once instead of backing off for seconds.
    pub const LOCAL_API: ClientSettings = ClientSettings {
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(8),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(20),
    };

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    fn retries(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
    }

    /// These settings as a per-operation override of a client's.
    pub fn overrides(&self) -> Builder {
        Builder::default()
            .timeout_config(self.timeouts())
            .retry_config(self.retries())
    }

    /// Builds a DynamoDB client from the environment (region, credentials,
    /// and the standard endpoint override `AWS_ENDPOINT_URL_DYNAMODB`) with
    /// these timeouts. Call once per cold start.
    pub async fn client(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// The SDK configuration behind [`ClientSettings::client`].
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(self.timeouts())
            .retry_config(self.retries())
            .load()
            .await
    }

    /// A client for an explicit endpoint (DynamoDB Local, a test double),
    /// with these timeouts. Region and credentials come from the environment
    /// when it has them, else `us-east-1` and dummy credentials, which is all
    /// DynamoDB Local needs.
    pub async fn client_for_endpoint(&self, endpoint: &str) -> Client {
        let sdk = self.sdk_config().await;
        let mut conf = Builder::from(&sdk).endpoint_url(endpoint);
        if sdk.region().is_none() {
            conf = conf.region(Region::new("us-east-1"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            conf =
                conf.credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
        Client::from_conf(conf.build())
    }
}

/// The DynamoDB implementation of every store trait.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    writes: ClientSettings,
}

/// How often one logical write is sent at most while DynamoDB cancels it for
/// a conflict with a concurrent transaction, or answers that the same
/// transaction (same token) is still in progress. The caller's deadline
/// usually ends it first.
pub const CONFLICT_ATTEMPTS: u32 = 12;

/// The schema version written on every item. Items without one are from
/// before versioning (version 1's shape); readers decode both.
pub const SCHEMA_VERSION: u32 = 1;

impl DynamoStore {
    /// A store on `table` through `client`; transactions run with
    /// [`ClientSettings::WRITES`].
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            writes: ClientSettings::WRITES,
        }
    }

    /// The same store with other settings for its transactions.
    #[must_use]
    pub fn with_write_settings(mut self, writes: ClientSettings) -> DynamoStore {
        self.writes = writes;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_record_item(&self, account: &AccountId, id: &KeyId) -> Result<Item, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(record_pk(account)))
            .key("sk", s(record_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item.ok_or(StoreError::NotFound)
    }

    async fn get_record(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, StoreError> {
        record_from_item(&self.get_record_item(account, id).await?)
    }

    /// Runs one logical write as a transaction. Every send of it — the
    /// SDK's retries of a timed-out or failed attempt and ours after a
    /// conflict — carries the same `ClientRequestToken`, so a commit whose
    /// answer was lost is answered by DynamoDB as done when sent again, never
    /// applied twice. `TransactionInProgressException` means that same
    /// transaction is still running: wait and send it again. A conflict with
    /// another transaction is retried with jitter. Returns whether a
    /// condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxOutcome, StoreError> {
        let token = crate::material::random_base62(36);
        let mut sends = 0;
        loop {
            sends += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .customize()
                .config_override(self.writes.overrides())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(TxOutcome::Done),
                Err(err) => err,
            };
            let codes = cancellation_codes(&err);
            let has = |code: &str| codes.iter().any(|c| c == code);
            if has("ConditionalCheckFailed") {
                let failed = codes
                    .iter()
                    .map(|c| c == "ConditionalCheckFailed")
                    .collect();
                return Ok(TxOutcome::ConditionFailed(failed));
            }
            if has("ThrottlingError") || has("ProvisionedThroughputExceeded") {
                return Err(StoreError::Throttled(Box::new(err)));
            }
            let in_progress = matches!(
                err.as_service_error(),
                Some(TransactWriteItemsError::TransactionInProgressException(_))
            );
            if (in_progress || has("TransactionConflict")) && sends < CONFLICT_ATTEMPTS {
                let ms = rand::rng().random_range(5..=20 * u64::from(sends));
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
            return Err(store_error(err));
        }
    }
}

enum TxOutcome {
    Done,
    /// A condition failed: for each item, in order, whether it was its own.
    ConditionFailed(Vec<bool>),
}

fn failed_at(failed: &[bool], i: usize) -> bool {
    failed.get(i).copied().unwrap_or(false)
}

fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// DynamoDB's error codes for "slow down".
const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// An SDK error as a store error: throttling, a missing table, or any other
/// unavailability; the SDK error stays the source.
fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.code() {
        Some(code) if THROTTLING_CODES.contains(&code) => StoreError::Throttled(Box::new(err)),
        Some("ResourceNotFoundException") => StoreError::MissingTable(Box::new(err)),
        _ => StoreError::Unavailable(Box::new(err)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn lookup_pk(hash: &KeyHash) -> String {
    format!("HASH#{}", hash.to_hex())
}
const LOOKUP_SK: &str = "HASH";

fn record_pk(account: &AccountId) -> String {
    format!("ACCT#{account}")
}

fn record_sk(id: &KeyId) -> String {
    format!("KEY#{id}")
}

/// A key's events: `EVENT#<key id>#<event id>` in the account's partition,
/// so they sort by time within the key, after every `KEY#` item.
fn event_sk_prefix(id: &KeyId) -> String {
    format!("EVENT#{id}#")
}

/// A deleted key's tombstone: its events stay readable while it lives.
fn gone_sk(id: &KeyId) -> String {
    format!("GONE#{id}")
}

/// The account's key count, which the key limit is checked against.
const COUNT_SK: &str = "COUNT";

/// The expiry log: a moment a secret stops by itself (a key's `expiresAt`,
/// a rolled secret's `graceUntil`) in the partition of its UTC minute,
/// `EXPIRY#2026-11-26T16:04`, sort key `AT#<time>#<key id>`. Written in the
/// transaction that sets the moment; gone by TTL a day after it.
fn expiry_pk(t: &Timestamp) -> String {
    format!("EXPIRY#{}", t.format("%Y-%m-%dT%H:%M"))
}

fn expiry_item(id: &KeyId, at: &Timestamp) -> Item {
    Item::from([
        ("pk".to_owned(), s(expiry_pk(at))),
        (
            "sk".to_owned(),
            s(format!("AT#{}#{id}", format_timestamp(at))),
        ),
        ("at".to_owned(), s(format_timestamp(at))),
        ("ttl".to_owned(), ttl_value(*at + chrono::Duration::days(1))),
        (
            "schemaVersion".to_owned(),
            AttributeValue::N(SCHEMA_VERSION.to_string()),
        ),
    ])
}

fn ttl_value(t: Timestamp) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

fn millis(t: Timestamp) -> AttributeValue {
    AttributeValue::N(t.timestamp_millis().to_string())
}

fn field_value(v: &FieldValue) -> AttributeValue {
    match v {
        FieldValue::Text(t) => s(t),
        FieldValue::Bool(b) => AttributeValue::Bool(*b),
        FieldValue::Number(n) => AttributeValue::N(n.to_string()),
        FieldValue::Scopes(sc) => scopes_value(*sc),
        FieldValue::Time(Some(t)) => s(format_timestamp(t)),
        FieldValue::Time(None) => AttributeValue::Null(true),
    }
}

fn event_item(account: &AccountId, e: &KeyEvent, ttl: Option<Timestamp>) -> Item {
    let changes = e
        .changes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), field_value(v)))
        .collect();
    let mut item = Item::from([
        ("pk".to_owned(), s(record_pk(account))),
        (
            "sk".to_owned(),
            s(format!("{}{}", event_sk_prefix(&e.key_id), e.id.as_str())),
        ),
        ("schemaVersion".to_owned(), schema_version()),
        ("keyId".to_owned(), s(e.key_id.as_str())),
        ("eventId".to_owned(), s(e.id.as_str())),
        ("time".to_owned(), s(format_timestamp(&e.time))),
        ("action".to_owned(), s(e.action.as_str())),
        ("actor".to_owned(), s(&e.actor)),
        ("requestId".to_owned(), s(&e.request_id)),
        ("changes".to_owned(), AttributeValue::M(changes)),
    ]);
    if let Some(t) = ttl {
        item.insert("ttl".to_owned(), ttl_value(t));
    }
    item
}

fn event_from_item(item: &Item) -> Result<KeyEvent, StoreError> {
    let key_id = get_key_id(item)?;
    let id = EventId::parse(get_s(item, "eventId")?).ok_or_else(|| corrupt("eventId"))?;
    let action = EventAction::parse(get_s(item, "action")?).ok_or_else(|| corrupt("action"))?;
    let changes = item
        .get("changes")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            // A fixed order, whatever the map's: the fields events carry.
            const FIELDS: [&str; 7] = [
                "name",
                "scopes",
                "active",
                "expiresAt",
                "prefix",
                "gracePeriodSeconds",
                "deactivatedReason",
            ];
            FIELDS
                .iter()
                .filter_map(|f| {
                    let v = m.get(*f)?;
                    let value = match (*f, v) {
                        ("scopes", AttributeValue::L(_)) => FieldValue::Scopes(get_scopes(
                            &Item::from([("scopes".to_owned(), v.clone())]),
                            &key_id,
                        )),
                        ("expiresAt", AttributeValue::S(t)) => {
                            FieldValue::Time(Some(parse_timestamp(t)?))
                        }
                        ("expiresAt", AttributeValue::Null(_)) => FieldValue::Time(None),
                        (_, AttributeValue::S(t)) => FieldValue::Text(t.clone()),
                        (_, AttributeValue::Bool(b)) => FieldValue::Bool(*b),
                        (_, AttributeValue::N(n)) => FieldValue::Number(n.parse().ok()?),
                        _ => return None,
                    };
                    Some((*f, value))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(KeyEvent {
        id,
        key_id,
        action,
        actor: get_s(item, "actor")?.to_owned(),
        request_id: get_s(item, "requestId")?.to_owned(),
        time: get_time(item, "time")?,
        changes,
    })
}

fn scopes_value(scopes: ScopeSet) -> AttributeValue {
    AttributeValue::L(scopes.iter().map(|sc| s(sc.as_str())).collect())
}

fn schema_version() -> AttributeValue {
    AttributeValue::N(SCHEMA_VERSION.to_string())
}

fn lookup_item(record: &KeyRecord) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(lookup_pk(&record.hash))),
        ("sk".to_owned(), s(LOOKUP_SK)),
        ("schemaVersion".to_owned(), schema_version()),
        ("accountId".to_owned(), s(record.account_id.as_str())),
        ("keyId".to_owned(), s(record.id.as_str())),
        ("scopes".to_owned(), scopes_value(record.scopes)),
        ("active".to_owned(), AttributeValue::Bool(record.active)),
    ]);
    if let Some(t) = &record.expires_at {
        item.insert("expiresAt".to_owned(), s(format_timestamp(t)));
    }
    item
}

fn record_item(record: &KeyRecord) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(record_pk(&record.account_id))),
        ("sk".to_owned(), s(record_sk(&record.id))),
        ("schemaVersion".to_owned(), schema_version()),
        ("accountId".to_owned(), s(record.account_id.as_str())),
        ("keyId".to_owned(), s(record.id.as_str())),
        ("name".to_owned(), s(record.name.as_str())),
        ("prefix".to_owned(), s(&record.prefix)),
        ("scopes".to_owned(), scopes_value(record.scopes)),
        ("active".to_owned(), AttributeValue::Bool(record.active)),
        (
            "createdAt".to_owned(),
            s(format_timestamp(&record.created_at)),
        ),
        (
            "updatedAt".to_owned(),
            s(format_timestamp(&record.updated_at)),
        ),
        ("createdBy".to_owned(), s(&record.created_by)),
        ("keyHash".to_owned(), s(record.hash.to_hex())),
        (
            "version".to_owned(),
            AttributeValue::N(record.version.to_string()),
        ),
    ]);
    if let Some(t) = &record.expires_at {
        item.insert("expiresAt".to_owned(), s(format_timestamp(t)));
    }
    if let Some(t) = record.last_used_at {
        item.insert("lastUsedAt".to_owned(), millis(t));
    }
    if let Some(p) = &record.previous {
        item.insert("previousKeyHash".to_owned(), s(p.hash.to_hex()));
        item.insert("previousUntil".to_owned(), s(format_timestamp(&p.until)));
    }
    if let Some(r) = record.deactivated_reason {
        item.insert("deactivatedReason".to_owned(), s(r.as_str()));
    }
    item
}

// ------------------------------------------------------------------ reading
//
// Strict at the edge, tolerant at rest: what is stored was valid when it was
// written, under the rules of its day. A scope the catalogue no longer has
// grants nothing (and is logged); a name the rules no longer allow is shown
// as it is. Only an item missing what a decision or the record needs (ids,
// state, times, hash, version) cannot be decoded.

fn corrupt(field: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute `{field}` is missing or malformed"))
}

fn get_s<'a>(item: &'a Item, field: &str) -> Result<&'a str, StoreError> {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(field))
}

fn get_bool(item: &Item, field: &str) -> Result<bool, StoreError> {
    item.get(field)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| corrupt(field))
}

/// The scopes the catalogue knows; anything else in the list is skipped with
/// a warning. A missing or malformed list grants nothing.
fn get_scopes(item: &Item, key_id: &KeyId) -> ScopeSet {
    let Some(list) = item.get("scopes").and_then(|v| v.as_l().ok()) else {
        tracing::warn!(
            key_id = key_id.as_str(),
            "stored scopes missing or not a list: the key grants nothing"
        );
        return ScopeSet::EMPTY;
    };
    list.iter()
        .filter_map(|v| {
            let parsed = v.as_s().ok().and_then(|s| s.parse().ok());
            if parsed.is_none() {
                tracing::warn!(
                    key_id = key_id.as_str(),
                    stored = ?v,
                    "stored scope not in the catalogue: it grants nothing"
                );
            }
            parsed
        })
        .collect()
}

fn get_time(item: &Item, field: &str) -> Result<Timestamp, StoreError> {
    parse_timestamp(get_s(item, field)?).ok_or_else(|| corrupt(field))
}

fn get_opt_time(item: &Item, field: &str) -> Result<Option<Timestamp>, StoreError> {
    item.contains_key(field)
        .then(|| get_time(item, field))
        .transpose()
}

fn get_account(item: &Item) -> Result<AccountId, StoreError> {
    AccountId::parse(get_s(item, "accountId")?).ok_or_else(|| corrupt("accountId"))
}

fn get_key_id(item: &Item) -> Result<KeyId, StoreError> {
    KeyId::parse(get_s(item, "keyId")?).ok_or_else(|| corrupt("keyId"))
}

fn get_hash(item: &Item) -> Result<KeyHash, StoreError> {
    KeyHash::from_hex(get_s(item, "keyHash")?).ok_or_else(|| corrupt("keyHash"))
}

fn get_n(item: &Item, field: &str) -> Result<u64, StoreError> {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt(field))
}

fn get_opt_millis(item: &Item, field: &str) -> Result<Option<Timestamp>, StoreError> {
    item.contains_key(field)
        .then(|| {
            let ms = get_n(item, field)?;
            i64::try_from(ms)
                .ok()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .ok_or_else(|| corrupt(field))
        })
        .transpose()
}

fn lookup_from_item(item: &Item) -> Result<KeyLookup, StoreError> {
    let key_id = get_key_id(item)?;
    Ok(KeyLookup {
        account_id: get_account(item)?,
        scopes: get_scopes(item, &key_id),
        active: get_bool(item, "active")?,
        expires_at: get_opt_time(item, "expiresAt")?,
        grace_until: get_opt_time(item, "graceUntil")?,
        last_used_at: get_opt_millis(item, "lastUsedAt")?,
        key_id,
    })
}

fn get_previous(item: &Item) -> Result<Option<PreviousSecret>, StoreError> {
    match item.get("previousKeyHash") {
        None => Ok(None),
        Some(_) => Ok(Some(PreviousSecret {
            hash: KeyHash::from_hex(get_s(item, "previousKeyHash")?)
                .ok_or_else(|| corrupt("previousKeyHash"))?,
            until: get_time(item, "previousUntil")?,
        })),
    }
}

fn record_from_item(item: &Item) -> Result<KeyRecord, StoreError> {
    let id = get_key_id(item)?;
    Ok(KeyRecord {
        account_id: get_account(item)?,
        name: KeyName::from_stored(get_s(item, "name")?),
        prefix: get_s(item, "prefix")?.to_owned(),
        scopes: get_scopes(item, &id),
        active: get_bool(item, "active")?,
        created_at: get_time(item, "createdAt")?,
        updated_at: get_time(item, "updatedAt")?,
        expires_at: get_opt_time(item, "expiresAt")?,
        created_by: get_s(item, "createdBy")?.to_owned(),
        hash: get_hash(item)?,
        version: get_n(item, "version")?,
        last_used_at: get_opt_millis(item, "lastUsedAt")?,
        previous: get_previous(item)?,
        deactivated_reason: get_reason(item, &id),
        id,
    })
}

/// Why the system deactivated the key. An unknown stored reason is taken
/// as a leak (logged): refusing a reactivation is the safe side.
fn get_reason(item: &Item, key_id: &KeyId) -> Option<DeactivatedReason> {
    let stored = item.get("deactivatedReason")?;
    let reason = stored.as_s().ok().and_then(|r| DeactivatedReason::parse(r));
    if reason.is_none() {
        tracing::warn!(key_id = key_id.as_str(), stored = ?stored, "unknown deactivation reason: taken as leaked");
    }
    Some(reason.unwrap_or(DeactivatedReason::Leaked))
}

fn build<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Unavailable(Box::new(e)))
}

impl LookupKey for DynamoStore {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(lookup_pk(hash)))
            .key("sk", s(LOOKUP_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(lookup_from_item).transpose()
    }
}

impl DynamoStore {
    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build(),
        )
        .map(|p| TransactWriteItem::builder().put(p).build())
    }

    fn delete_item(
        &self,
        pk: String,
        sk: String,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .set_condition_expression(condition.map(str::to_owned))
                .build(),
        )
        .map(|d| TransactWriteItem::builder().delete(d).build())
    }

    fn update_item(
        &self,
        pk: String,
        sk: String,
        expression: String,
        condition: Option<String>,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression(expression)
                .set_condition_expression(condition)
                .set_expression_attribute_names((!names.is_empty()).then_some(names))
                .set_expression_attribute_values((!values.is_empty()).then_some(values))
                .build(),
        )
        .map(|u| TransactWriteItem::builder().update(u).build())
    }

    /// The account's key count, by `delta`; with `max`, only while below it.
    fn count_item(
        &self,
        account: &AccountId,
        delta: i64,
        max: Option<u32>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut values = Item::from([(":delta".to_owned(), AttributeValue::N(delta.to_string()))]);
        let condition = max.map(|m| {
            values.insert(":max".to_owned(), AttributeValue::N(m.to_string()));
            "attribute_not_exists(#keys) OR #keys < :max".to_owned()
        });
        self.update_item(
            record_pk(account),
            COUNT_SK.to_owned(),
            "ADD #keys :delta".to_owned(),
            condition,
            HashMap::from([("#keys".to_owned(), "keys".to_owned())]),
            values,
        )
    }
}

impl CreateKey for DynamoStore {
    async fn create(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
    ) -> Result<(), StoreError> {
        let fresh = Some("attribute_not_exists(pk)");
        let items = vec![
            self.put(record_item(record), fresh)?,
            self.put(lookup_item(record), fresh)?,
            self.count_item(&record.account_id, 1, Some(max_keys))?,
            self.put(
                event_item(&record.account_id, &KeyEvent::created(record, audit), None),
                None,
            )?,
        ];
        let mut items = items;
        if let Some(at) = &record.expires_at {
            items.push(self.put(expiry_item(&record.id, at), None)?);
        }
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(f) if !failed_at(&f, 0) && !failed_at(&f, 1) => {
                Err(StoreError::KeyLimitReached)
            }
            TxOutcome::ConditionFailed(_) => Err(StoreError::AlreadyExists),
        }
    }
}

impl GetKey for DynamoStore {
    async fn get(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, StoreError> {
        self.get_record(account, id).await
    }
}

impl ListKeys for DynamoStore {
    async fn list(
        &self,
        account: &AccountId,
        limit: u16,
        token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let start = token
            .map(|t| token::decode(account, t))
            .transpose()?
            .map(|after| {
                Item::from([
                    ("pk".to_owned(), s(record_pk(account))),
                    ("sk".to_owned(), s(record_sk(&after))),
                ])
            });
        let limit = usize::from(limit.clamp(1, MAX_PAGE));
        // One more than asked: a next token only when more keys follow.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
            .expression_attribute_values(":pk", s(record_pk(account)))
            .expression_attribute_values(":sk", s("KEY#"))
            .consistent_read(true)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let mut raw = out.items;
        let raw = raw.get_or_insert_default();
        // The position is the last item's sort key, whether or not it decodes.
        let next_token = if raw.len() > limit {
            raw.truncate(limit);
            raw.last()
                .and_then(|item| item.get("sk")?.as_s().ok()?.strip_prefix("KEY#"))
                .and_then(KeyId::parse)
                .map(|last| token::encode(account, &last))
        } else {
            None
        };
        let items = raw
            .iter()
            .filter_map(|item| match record_from_item(item) {
                Ok(record) => Some(record),
                Err(err) => {
                    let sk = item.get("sk").and_then(|v| v.as_s().ok());
                    tracing::error!(account_id = account.as_str(), sk, error = %err, "skipping a stored key that cannot be decoded");
                    None
                }
            })
            .collect();
        Ok(Page { items, next_token })
    }
}

/// SET expressions, names and values for the state a key's items share.
struct SharedSets {
    sets: Vec<&'static str>,
    names: HashMap<String, String>,
    values: Item,
}

fn shared_sets(changes: &KeyChanges) -> SharedSets {
    let mut out = SharedSets {
        sets: Vec::new(),
        names: HashMap::new(),
        values: Item::new(),
    };
    if let Some(scopes) = changes.scopes {
        out.sets.push("#scopes = :scopes");
        out.names.insert("#scopes".to_owned(), "scopes".to_owned());
        out.values
            .insert(":scopes".to_owned(), scopes_value(scopes));
    }
    if let Some(active) = changes.active {
        out.sets.push("#active = :active");
        out.names.insert("#active".to_owned(), "active".to_owned());
        out.values
            .insert(":active".to_owned(), AttributeValue::Bool(active));
    }
    out
}

impl UpdateKey for DynamoStore {
    async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> Result<KeyRecord, StoreError> {
        // The hashes never change here: read them to reach the lookup items.
        // A record that cannot be decoded is refused here, before anything
        // is written.
        let current = self.get_record(account, id).await?;
        let now = audit.at;

        let shared = shared_sets(changes);
        let mut sets = vec!["#updatedAt = :updatedAt"];
        sets.extend(shared.sets.iter().copied());
        let mut names = shared.names.clone();
        names.insert("#updatedAt".to_owned(), "updatedAt".to_owned());
        names.insert("#version".to_owned(), "version".to_owned());
        let mut values = shared.values.clone();
        values.insert(":updatedAt".to_owned(), s(format_timestamp(&now)));
        values.insert(":one".to_owned(), AttributeValue::N("1".to_owned()));
        if let Some(name) = &changes.name {
            sets.push("#name = :name");
            names.insert("#name".to_owned(), "name".to_owned());
            values.insert(":name".to_owned(), s(name.as_str()));
        }
        let mut condition = "attribute_exists(pk)".to_owned();
        if let Some(v) = expected_version {
            condition.push_str(" AND #version = :expected");
            values.insert(":expected".to_owned(), AttributeValue::N(v.to_string()));
        }
        if changes.active == Some(true) {
            // A leaked key is never reactivated, even by a racing update.
            if current.deactivated_reason.is_some() {
                return Err(StoreError::KeyLeaked);
            }
            condition.push_str(" AND attribute_not_exists(deactivatedReason)");
        }
        // A previous secret past its grace period goes now.
        let expired_previous = current.previous.filter(|p| !p.is_live_at(now));
        let remove = if expired_previous.is_some() {
            " REMOVE previousKeyHash, previousUntil"
        } else {
            ""
        };
        let mut items = vec![self.update_item(
            record_pk(account),
            record_sk(id),
            format!("SET {}{remove} ADD #version :one", sets.join(", ")),
            Some(condition),
            names,
            values,
        )?];
        if !shared.sets.is_empty() {
            for hash in current.live_hashes(now) {
                items.push(self.update_item(
                    lookup_pk(&hash),
                    LOOKUP_SK.to_owned(),
                    format!("SET {}", shared.sets.join(", ")),
                    Some("attribute_exists(pk)".to_owned()),
                    shared.names.clone(),
                    shared.values.clone(),
                )?);
            }
        }
        if let Some(p) = expired_previous {
            items.push(self.delete_item(lookup_pk(&p.hash), LOOKUP_SK.to_owned(), None)?);
        }
        let event = KeyEvent::updated(id, changes, audit);
        items.push(self.put(event_item(account, &event, None), None)?);
        match self.transact(items).await? {
            TxOutcome::Done => self.get_record(account, id).await,
            TxOutcome::ConditionFailed(_) => Err(self
                .why_condition_failed(account, id, expected_version)
                .await),
        }
    }
}

/// How often a roll without `If-Match` reads again when a concurrent roll
/// changed the key's secret between its read and its write.
const ROLL_ATTEMPTS: u32 = 3;

impl RollKey for DynamoStore {
    async fn roll(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> Result<KeyRecord, StoreError> {
        let now = audit.at;
        let new_hash = key.hash();
        let prefix = key.display_prefix();
        let seconds = u64::try_from(grace.num_seconds()).unwrap_or(0);
        for _ in 0..ROLL_ATTEMPTS {
            let current = self.get_record(account, id).await?;
            let mut next = current.clone();
            next.hash = new_hash;
            next.prefix = prefix.clone();
            // A leaked secret gets no grace; the new one may be reactivated.
            let leaked = current.deactivated_reason.is_some();
            next.deactivated_reason = None;
            let grace = if leaked {
                chrono::Duration::zero()
            } else {
                grace
            };
            let live = grace > chrono::Duration::zero();
            let until = now + grace;

            let mut sets = vec!["keyHash = :new", "prefix = :prefix", "updatedAt = :now"];
            let mut values = Item::from([
                (":new".to_owned(), s(new_hash.to_hex())),
                (":old".to_owned(), s(current.hash.to_hex())),
                (":prefix".to_owned(), s(&prefix)),
                (":now".to_owned(), s(format_timestamp(&now))),
                (":one".to_owned(), AttributeValue::N("1".to_owned())),
            ]);
            let mut removes = Vec::new();
            if live {
                sets.push("previousKeyHash = :old");
                sets.push("previousUntil = :until");
                values.insert(":until".to_owned(), s(format_timestamp(&until)));
            } else {
                removes.extend(["previousKeyHash", "previousUntil"]);
            }
            if leaked {
                removes.push("deactivatedReason");
            }
            let remove = if removes.is_empty() {
                String::new()
            } else {
                format!(" REMOVE {}", removes.join(", "))
            };
            let mut condition = "attribute_exists(pk) AND keyHash = :old".to_owned();
            if let Some(v) = expected_version {
                condition.push_str(" AND #version = :expected");
                values.insert(":expected".to_owned(), AttributeValue::N(v.to_string()));
            }
            let mut items = vec![
                self.put(lookup_item(&next), Some("attribute_not_exists(pk)"))?,
                self.update_item(
                    record_pk(account),
                    record_sk(id),
                    format!("SET {}{remove} ADD #version :one", sets.join(", ")),
                    Some(condition),
                    HashMap::from([("#version".to_owned(), "version".to_owned())]),
                    values,
                )?,
            ];
            if live {
                items.push(self.update_item(
                    lookup_pk(&current.hash),
                    LOOKUP_SK.to_owned(),
                    "SET graceUntil = :until, #ttl = :ttl".to_owned(),
                    Some("attribute_exists(pk)".to_owned()),
                    HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]),
                    Item::from([
                        (":until".to_owned(), s(format_timestamp(&until))),
                        (":ttl".to_owned(), ttl_value(until)),
                    ]),
                )?);
            } else {
                items.push(self.delete_item(
                    lookup_pk(&current.hash),
                    LOOKUP_SK.to_owned(),
                    None,
                )?);
            }
            // An earlier grace period ends now: at most two live secrets.
            if let Some(earlier) = current.previous {
                items.push(self.delete_item(
                    lookup_pk(&earlier.hash),
                    LOOKUP_SK.to_owned(),
                    None,
                )?);
            }
            let event = KeyEvent::rolled(id, &prefix, seconds, audit);
            items.push(self.put(event_item(account, &event, None), None)?);
            if live {
                items.push(self.put(expiry_item(id, &until), None)?);
            }
            match self.transact(items).await? {
                TxOutcome::Done => return self.get_record(account, id).await,
                TxOutcome::ConditionFailed(f) if failed_at(&f, 0) => {
                    return Err(StoreError::AlreadyExists);
                }
                TxOutcome::ConditionFailed(_) => {
                    match (expected_version, self.get_record_item(account, id).await) {
                        (_, Err(e)) => return Err(e),
                        (Some(v), Ok(item)) if get_n(&item, "version")? != v => {
                            return Err(StoreError::VersionConflict);
                        }
                        // Another roll changed the secret since our read: read again.
                        _ => continue,
                    }
                }
            }
        }
        Err(StoreError::VersionConflict)
    }
}

impl DynamoStore {
    /// After a failed condition on a record: gone (404) or another version (409).
    async fn why_condition_failed(
        &self,
        account: &AccountId,
        id: &KeyId,
        expected_version: Option<u64>,
    ) -> StoreError {
        match (expected_version, self.get_record_item(account, id).await) {
            (_, Err(e)) => e,
            (_, Ok(item)) if item.contains_key("deactivatedReason") => StoreError::KeyLeaked,
            (Some(_), Ok(_)) => StoreError::VersionConflict,
            // Exists again without a version condition: only a delete and a
            // re-create with the same id could do that, and ids are random.
            (None, Ok(_)) => StoreError::NotFound,
        }
    }

    /// Best effort, after a delete: marks the key's earlier events for
    /// DynamoDB's TTL, so they go when the tombstone does. Reads never
    /// depend on it (the tombstone decides what is readable), so a failure
    /// is only logged.
    async fn expire_events(&self, account: &AccountId, id: &KeyId, at: Timestamp) {
        let work = async {
            let mut start = None;
            let mut marked = 0usize;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                    .filter_expression("attribute_not_exists(#ttl)")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":pk", s(record_pk(account)))
                    .expression_attribute_values(":sk", s(event_sk_prefix(id)))
                    .projection_expression("pk, sk")
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out.items() {
                    let (Some(pk), Some(sk)) = (item.get("pk"), item.get("sk")) else {
                        continue;
                    };
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .key("pk", pk.clone())
                        .key("sk", sk.clone())
                        .update_expression("SET #ttl = :ttl")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_names("#ttl", "ttl")
                        .expression_attribute_values(":ttl", ttl_value(at + DELETED_EVENTS_KEPT))
                        .send()
                        .await
                        .map_err(store_error)?;
                    marked += 1;
                }
                match out.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => return Ok::<usize, StoreError>(marked),
                }
            }
        };
        match tokio::time::timeout(Duration::from_millis(800), work).await {
            Ok(Ok(n)) => tracing::debug!(
                key_id = id.as_str(),
                marked = n,
                "deleted key's events marked for expiry"
            ),
            Ok(Err(err)) => {
                tracing::warn!(key_id = id.as_str(), error = %err, "could not mark a deleted key's events for expiry")
            }
            Err(_) => tracing::warn!(
                key_id = id.as_str(),
                "marking a deleted key's events for expiry ran out of time"
            ),
        }
    }
}

impl DeleteKey for DynamoStore {
    async fn delete(
        &self,
        account: &AccountId,
        id: &KeyId,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        // Only the hashes are needed (to reach the lookup items), so a
        // record that no longer decodes in full can still be deleted.
        let current = self.get_record_item(account, id).await?;
        let hash = get_hash(&current)?;
        let previous = get_previous(&current).ok().flatten();
        let kept_until = audit.at + DELETED_EVENTS_KEPT;
        // The record must still be there; the rest goes with it.
        let mut items = vec![
            self.delete_item(
                record_pk(account),
                record_sk(id),
                Some("attribute_exists(pk)"),
            )?,
            self.delete_item(lookup_pk(&hash), LOOKUP_SK.to_owned(), None)?,
        ];
        if let Some(p) = previous {
            items.push(self.delete_item(lookup_pk(&p.hash), LOOKUP_SK.to_owned(), None)?);
        }
        items.push(self.count_item(account, -1, None)?);
        items.push(self.put(
            Item::from([
                ("pk".to_owned(), s(record_pk(account))),
                ("sk".to_owned(), s(gone_sk(id))),
                ("schemaVersion".to_owned(), schema_version()),
                ("keyId".to_owned(), s(id.as_str())),
                ("deletedAt".to_owned(), s(format_timestamp(&audit.at))),
                ("ttl".to_owned(), ttl_value(kept_until)),
            ]),
            None,
        )?);
        let event = KeyEvent::deleted(id, audit);
        items.push(self.put(event_item(account, &event, Some(kept_until)), None)?);
        match self.transact(items).await? {
            TxOutcome::Done => {
                self.expire_events(account, id, audit.at).await;
                Ok(())
            }
            TxOutcome::ConditionFailed(_) => Err(StoreError::NotFound),
        }
    }
}

impl ExpiryLog for DynamoStore {
    /// One consistent Query per UTC minute the window touches (two for the
    /// sweep's 70 s window), each on that minute's partition.
    async fn expiring(&self, after: Timestamp, until: Timestamp) -> Result<usize, StoreError> {
        use chrono::{DurationRound, TimeDelta};
        let mut minute = after
            .duration_trunc(TimeDelta::minutes(1))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut count = 0;
        while minute <= until {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(expiry_pk(&minute)))
                .expression_attribute_values(":from", s(format!("AT#{}", format_timestamp(&after))))
                // `~` sorts after every id character: the whole of `until`.
                .expression_attribute_values(":to", s(format!("AT#{}#~", format_timestamp(&until))))
                .consistent_read(true)
                .send()
                .await
                .map_err(store_error)?;
            count += out
                .items()
                .iter()
                .filter(|item| {
                    item.get("at")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|t| parse_timestamp(t))
                        .is_some_and(|t| after < t && t <= until)
                })
                .count();
            minute += TimeDelta::minutes(1);
        }
        Ok(count)
    }
}

impl RevokeLeaked for DynamoStore {
    async fn revoke_leaked(
        &self,
        hash: &KeyHash,
        audit: &Audit,
    ) -> Result<LeakOutcome, StoreError> {
        let now = audit.at;
        for _ in 0..ROLL_ATTEMPTS {
            let Some(lookup) = self.lookup(hash).await? else {
                return Ok(LeakOutcome::NotOurs);
            };
            if lookup.is_expired_at(now) {
                return Ok(LeakOutcome::NotOurs);
            }
            let (account, id) = (&lookup.account_id, &lookup.key_id);
            let current = match self.get_record(account, id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Ok(LeakOutcome::NotOurs),
                Err(e) => return Err(e),
            };
            if current.deactivated_reason.is_some() {
                return Ok(LeakOutcome::AlreadyRevoked(id.clone()));
            }
            let mut items = vec![self.update_item(
                record_pk(account),
                record_sk(id),
                "SET active = :false, deactivatedReason = :leaked, updatedAt = :now ADD #version :one"
                    .to_owned(),
                Some("attribute_exists(pk) AND version = :seen".to_owned()),
                HashMap::from([("#version".to_owned(), "version".to_owned())]),
                Item::from([
                    (":false".to_owned(), AttributeValue::Bool(false)),
                    (":leaked".to_owned(), s(DeactivatedReason::Leaked.as_str())),
                    (":now".to_owned(), s(format_timestamp(&now))),
                    (":one".to_owned(), AttributeValue::N("1".to_owned())),
                    (":seen".to_owned(), AttributeValue::N(current.version.to_string())),
                ]),
            )?];
            for h in current.live_hashes(now) {
                items.push(self.update_item(
                    lookup_pk(&h),
                    LOOKUP_SK.to_owned(),
                    "SET active = :false".to_owned(),
                    Some("attribute_exists(pk)".to_owned()),
                    HashMap::new(),
                    Item::from([(":false".to_owned(), AttributeValue::Bool(false))]),
                )?);
            }
            let event = KeyEvent::revoked(id, audit);
            items.push(self.put(event_item(account, &event, None), None)?);
            match self.transact(items).await? {
                TxOutcome::Done => return Ok(LeakOutcome::Revoked(id.clone())),
                // Changed since the read (or deleted): read again.
                TxOutcome::ConditionFailed(_) => continue,
            }
        }
        Err(StoreError::Unavailable(
            "the key kept changing while it was revoked".into(),
        ))
    }
}

impl ListEvents for DynamoStore {
    async fn events(
        &self,
        account: &AccountId,
        id: &KeyId,
        limit: u16,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<EventPage, StoreError> {
        let before = token
            .map(|t| token::decode_event(account, id, t))
            .transpose()?;
        // Readable: a key of this account, or one it deleted not too long ago.
        let visible = match self.get_record_item(account, id).await {
            Ok(_) => true,
            Err(StoreError::NotFound) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(record_pk(account)))
                    .key("sk", s(gone_sk(id)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(store_error)?;
                out.item()
                    .and_then(|i| get_time(i, "deletedAt").ok())
                    .is_some_and(|at| now < at + DELETED_EVENTS_KEPT)
            }
            Err(e) => return Err(e),
        };
        if !visible {
            return Err(StoreError::NotFound);
        }
        let limit = usize::from(limit.clamp(1, MAX_PAGE));
        let prefix = event_sk_prefix(id);
        let upper = match &before {
            Some(b) => format!("{prefix}{}", b.as_str()),
            None => format!("{prefix}~"),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(record_pk(account)))
            .expression_attribute_values(":lo", s(&prefix))
            .expression_attribute_values(":hi", s(upper))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(store_error)?;
        let mut raw: Vec<&Item> = out
            .items()
            .iter()
            .filter(|item| {
                let eid = item.get("eventId").and_then(|v| v.as_s().ok());
                before
                    .as_ref()
                    .is_none_or(|b| eid.map(String::as_str) != Some(b.as_str()))
            })
            .collect();
        let next_token = if raw.len() > limit {
            raw.truncate(limit);
            raw.last()
                .and_then(|item| EventId::parse(item.get("eventId")?.as_s().ok()?))
                .map(|last| token::encode_event(account, id, &last))
        } else {
            None
        };
        let items = raw
            .into_iter()
            .filter_map(|item| match event_from_item(item) {
                Ok(e) => Some(e),
                Err(err) => {
                    tracing::error!(key_id = id.as_str(), error = %err, "skipping a stored event that cannot be decoded");
                    None
                }
            })
            .collect();
        Ok(EventPage { items, next_token })
    }
}

impl RecordUse for DynamoStore {
    async fn record_use(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = now.timestamp_millis();
        let threshold = now_ms - interval.num_milliseconds();
        // The lookup item claims the interval: one call in it records.
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lookup_pk(hash)))
            .key("sk", s(LOOKUP_SK))
            .update_expression("SET lastUsedAt = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt <= :threshold)",
            )
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":threshold", AttributeValue::N(threshold.to_string()))
            .send()
            .await;
        match claimed {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(false);
            }
            Err(err) => return Err(store_error(err)),
        }
        let recorded = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(record_pk(&lookup.account_id)))
            .key("sk", s(record_sk(&lookup.key_id)))
            .update_expression("SET lastUsedAt = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt < :now)",
            )
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .send()
            .await;
        match recorded {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(true)
            }
            Err(err) => Err(store_error(err)),
        }
    }
}
