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
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use rand::Rng;
use scopes::ScopeSet;

use crate::audit::{
    Audit, DELETED_EVENTS_KEPT, EventAction, EventId, EventPage, FieldValue, KeyEvent,
};
use crate::change::{self, Change, Plan};
use crate::idempotency::{
    Claim, Completion, Entry, EntryId, Fingerprint, IdempotencyStore, Sealed,
};
use crate::invariant::Snapshot;
use crate::material::{ApiKey, KeyHash};
use crate::model::{
    AccountId, DeactivatedReason, KeyChanges, KeyId, KeyLookup, KeyName, KeyRecord, Page,
    PreviousSecret, Timestamp, format_timestamp, parse_timestamp,
};
use crate::store::{
    CreateKey, DeleteKey, ExpiryLog, GetKey, LeakOutcome, ListEvents, ListKeys, LookupKey,
    LookupKeys, MAX_PAGE, RecordUse, RevokeLeaked, RollKey, StoreError, UpdateKey, committed,
    token,
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
            .http_client(https_client())
            .timeout_config(self.timeouts())
            .retry_config(self.retries())
            .load()
            .await
    }

    /// The SDK configuration of this machine's tools (the local API,
    /// create-table, tests, benchmarks), which never ask the EC2
    /// instance-metadata service for anything: the region from
    /// `AWS_REGION` or `AWS_DEFAULT_REGION`, else `us-east-1`; the
    /// credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, else
    /// dummy ones, all DynamoDB Local needs (it keeps a database per key id
    /// and region, so every tool uses the same). The endpoint is the
    /// environment's (`AWS_ENDPOINT_URL_DYNAMODB`) unless one is given.
    pub async fn local_sdk_config(&self) -> aws_config::SdkConfig {
        local_config_loader()
            .timeout_config(self.timeouts())
            .retry_config(self.retries())
            .load()
            .await
    }

    /// A client from [`ClientSettings::local_sdk_config`]: for this
    /// machine's tools, never a Lambda function.
    pub async fn local_client(&self) -> Client {
        Client::new(&self.local_sdk_config().await)
    }

    /// A local tool's client for an explicit endpoint (DynamoDB Local, a
    /// test double), with these timeouts ([`ClientSettings::local_sdk_config`]).
    pub async fn client_for_endpoint(&self, endpoint: &str) -> Client {
        let sdk = self.local_sdk_config().await;
        Client::from_conf(Builder::from(&sdk).endpoint_url(endpoint).build())
    }
}

/// The HTTPS client of every SDK client of this project (functions and
/// local tools): the SDK's own (hyper, connection pooling, the connect
/// timeout from the configuration) with rustls on `ring`. The SDK's default
/// would bring aws-lc into every function for TLS alone; the authorizer
/// then links none (its zip: BENCHMARKS.md). Built once per configuration.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The start of every SDK configuration of this machine's tools (any
/// client: DynamoDB, API Gateway): region and credentials from the
/// environment or local defaults, never the EC2 instance-metadata service
/// ([`ClientSettings::local_sdk_config`]).
pub fn local_config_loader() -> aws_config::ConfigLoader {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, var("AWS_SESSION_TOKEN"), None, "environment")
        }
        _ => Credentials::new("local", "local", None, None, "local"),
    };
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .region(Region::new(region))
        .credentials_provider(credentials)
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

    /// One item by its keys, with a consistent read.
    async fn get_consistent(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    async fn get_record_item(&self, account: &AccountId, id: &KeyId) -> Result<Item, StoreError> {
        self.get_consistent(record_pk(account), &record_sk(id))
            .await?
            .ok_or(StoreError::NotFound)
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
    async fn transact(
        &self,
        token: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        let mut sends = 0;
        loop {
            sends += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(token)
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

/// Whether a single-item write was refused by its condition.
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
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
    lookup_item_of(&record.hash, &record.lookup())
}

/// A lookup item as written whole: at create, and for a roll's new secret.
fn lookup_item_of(hash: &KeyHash, lookup: &KeyLookup) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(lookup_pk(hash))),
        ("sk".to_owned(), s(LOOKUP_SK)),
        ("schemaVersion".to_owned(), schema_version()),
        ("accountId".to_owned(), s(lookup.account_id.as_str())),
        ("keyId".to_owned(), s(lookup.key_id.as_str())),
        ("scopes".to_owned(), scopes_value(lookup.scopes)),
        ("active".to_owned(), AttributeValue::Bool(lookup.active)),
    ]);
    if let Some(t) = &lookup.expires_at {
        item.insert("expiresAt".to_owned(), s(format_timestamp(t)));
    }
    if let Some(t) = &lookup.grace_until {
        item.insert("graceUntil".to_owned(), s(format_timestamp(t)));
        item.insert("ttl".to_owned(), ttl_value(*t));
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

impl DynamoStore {
    /// Every record and lookup item of the table, read with a consistent
    /// Scan, page by page: what the invariant checker and the repair command
    /// read. Events, tombstones, counts and the expiry log are left out.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
                    continue;
                };
                if let Some(hex) = pk.strip_prefix("HASH#") {
                    match (KeyHash::from_hex(hex), lookup_from_item(item)) {
                        (Some(hash), Ok(lookup)) => snapshot.lookups.push((hash, lookup)),
                        _ => snapshot.undecodable.push((pk, sk)),
                    }
                } else if sk.starts_with("KEY#") {
                    match record_from_item(item) {
                        Ok(record) => snapshot.records.push(record),
                        Err(_) => snapshot.undecodable.push((pk, sk)),
                    }
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(snapshot),
            }
        }
    }
}

impl LookupKey for DynamoStore {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        let out = self.get_consistent(lookup_pk(hash), LOOKUP_SK).await?;
        out.as_ref().map(lookup_from_item).transpose()
    }
}

/// The most keys one `BatchGetItem` may ask for.
const BATCH_GET: usize = 100;

impl LookupKeys for DynamoStore {
    /// `BatchGetItem`s of at most 100 keys, strongly consistent; keys
    /// DynamoDB leaves unprocessed (capacity) are asked for again after a
    /// short pause. The caller's deadline bounds the whole.
    async fn lookup_many(
        &self,
        hashes: &[KeyHash],
    ) -> Result<HashMap<KeyHash, KeyLookup>, StoreError> {
        let mut unique: Vec<KeyHash> = hashes.to_vec();
        unique.sort_unstable_by_key(|h| h.0);
        unique.dedup();
        let mut found = HashMap::new();
        for chunk in unique.chunks(BATCH_GET) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|h| {
                    Item::from([
                        ("pk".to_owned(), s(lookup_pk(h))),
                        ("sk".to_owned(), s(LOOKUP_SK)),
                    ])
                })
                .collect();
            let mut pending = Some(build(
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build(),
            )?);
            let mut pause = 10;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let hash = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|pk| pk.strip_prefix("HASH#"))
                        .and_then(KeyHash::from_hex);
                    if let Some(hash) = hash {
                        found.insert(hash, lookup_from_item(item)?);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    pause = (pause * 2).min(200);
                }
            }
        }
        Ok(found)
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
    async fn create_with(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
        completion: Option<&Completion<'_>>,
    ) -> Result<(), StoreError> {
        let fresh = Some("attribute_not_exists(pk)");
        let mut items = vec![
            self.put(record_item(record), fresh)?,
            self.put(lookup_item(record), fresh)?,
            self.count_item(&record.account_id, 1, Some(max_keys))?,
            self.put(
                event_item(&record.account_id, &KeyEvent::created(record, audit), None),
                None,
            )?,
        ];
        if let Some(at) = &record.expires_at {
            items.push(self.put(expiry_item(&record.id, at), None)?);
        }
        let completes_at = items.len();
        if let Some(c) = completion {
            items.push(self.completion_item(c, record)?);
        }
        let token = crate::material::random_base62(36);
        match self.transact(&token, items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(f)
                if completion.is_some() && failed_at(&f, completes_at) =>
            {
                Err(StoreError::IdempotencyLost)
            }
            TxOutcome::ConditionFailed(f) if !failed_at(&f, 0) && !failed_at(&f, 1) => {
                Err(StoreError::KeyLimitReached)
            }
            TxOutcome::ConditionFailed(_) => Err(StoreError::AlreadyExists),
        }
    }
}

fn idempotency_pk(entry: &EntryId) -> String {
    format!("IDEM#{}", hex::encode(entry.0))
}
const IDEMPOTENCY_SK: &str = "IDEM";

fn entry_from_item(item: &Item) -> Result<Entry, StoreError> {
    let time = |field: &str| -> Result<Timestamp, StoreError> {
        i64::try_from(get_n(item, field)?)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .ok_or_else(|| corrupt(field))
    };
    let bytes = |field: &str| -> Option<Vec<u8>> {
        item.get(field)
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec())
    };
    let mut fingerprint = [0u8; 32];
    hex::decode_to_slice(get_s(item, "fingerprint")?, &mut fingerprint)
        .map_err(|_| corrupt("fingerprint"))?;
    let done = get_s(item, "state")? == "done";
    Ok(Entry {
        fingerprint: Fingerprint(fingerprint),
        created_at: time("createdAt")?,
        token: get_s(item, "claim")?.to_owned(),
        answer: match (done, bytes("nonce"), bytes("answer")) {
            (true, Some(nonce), Some(ciphertext)) => Some(Sealed { nonce, ciphertext }),
            (true, _, _) => return Err(corrupt("answer")),
            (false, _, _) => None,
        },
        lock_until: if done {
            time("createdAt")?
        } else {
            time("lockUntil")?
        },
    })
}

impl DynamoStore {
    /// The update that completes a claimed entry with the answer sealed for
    /// `record`, only while the claim is still this request's.
    fn completion_item(
        &self,
        completion: &Completion<'_>,
        record: &KeyRecord,
    ) -> Result<TransactWriteItem, StoreError> {
        let sealed = (completion.seal)(record)?;
        self.update_item(
            idempotency_pk(&completion.entry),
            IDEMPOTENCY_SK.to_owned(),
            "SET #state = :done, nonce = :nonce, answer = :answer REMOVE lockUntil".to_owned(),
            Some("claim = :token AND #state = :pending".to_owned()),
            HashMap::from([("#state".to_owned(), "state".to_owned())]),
            Item::from([
                (":done".to_owned(), s("done")),
                (":pending".to_owned(), s("pending")),
                (":token".to_owned(), s(&completion.token)),
                (":nonce".to_owned(), AttributeValue::B(sealed.nonce.into())),
                (
                    ":answer".to_owned(),
                    AttributeValue::B(sealed.ciphertext.into()),
                ),
            ]),
        )
    }
}

impl IdempotencyStore for DynamoStore {
    async fn claim(
        &self,
        entry: &EntryId,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        for _ in 0..3 {
            let token = crate::material::random_base62(24);
            let ms = |t: Timestamp| AttributeValue::N(t.timestamp_millis().to_string());
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(idempotency_pk(entry)))
                .item("sk", s(IDEMPOTENCY_SK))
                .item("schemaVersion", schema_version())
                .item("fingerprint", s(hex::encode(fingerprint.0)))
                .item("createdAt", ms(now))
                .item("lockUntil", ms(now + crate::idempotency::LOCK))
                .item("claim", s(&token))
                .item("state", s("pending"))
                .item(
                    "ttl",
                    ttl_value(now + crate::idempotency::WINDOW + chrono::Duration::hours(1)),
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR createdAt <= :dayAgo \
                     OR (#state = :pending AND lockUntil <= :now)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":dayAgo", ms(now - crate::idempotency::WINDOW))
                .expression_attribute_values(":now", ms(now))
                .expression_attribute_values(":pending", s("pending"))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::Claimed(token)),
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(store_error(err)),
            }
            let found = self
                .get_consistent(idempotency_pk(entry), IDEMPOTENCY_SK)
                .await?;
            match found.as_ref().map(entry_from_item).transpose()? {
                Some(e) if !e.replaceable_at(now) => return Ok(e.answers(fingerprint)),
                // Released or lapsed since: claim again.
                _ => continue,
            }
        }
        Ok(Claim::InFlight)
    }

    async fn release(&self, entry: &EntryId, token: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(idempotency_pk(entry)))
            .key("sk", s(IDEMPOTENCY_SK))
            .condition_expression("claim = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Ok(()),
            Err(err) => Err(store_error(err)),
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

/// How often one change is read, planned and committed at most while other
/// changes to the same key keep committing first. The invocation's deadline
/// usually ends it sooner; each attempt waits a little longer (jittered).
pub const MUTATE_ATTEMPTS: u32 = 64;

/// Why a guarded commit did not go through, once the record is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Our own commit (its answer was lost, or a resend was refused).
    Committed,
    /// Another change committed since our read: read and plan again.
    Raced,
    /// The record is as we read it: one of our own conditions on another
    /// item failed.
    Unchanged,
}

/// What a change needs of the record it read to write it.
struct Read {
    account: AccountId,
    id: KeyId,
    version: u64,
    /// The hashes it names (current, previous).
    named: Vec<KeyHash>,
}

impl Read {
    fn of(record: &KeyRecord) -> Read {
        Read {
            account: record.account_id.clone(),
            id: record.id.clone(),
            version: record.version,
            named: record.named_hashes().collect(),
        }
    }

    /// From an item that does not decode in full: its version and whatever
    /// hashes it still names.
    fn raw(account: &AccountId, id: &KeyId, item: &Item) -> Result<Read, StoreError> {
        Ok(Read {
            account: account.clone(),
            id: id.clone(),
            version: get_n(item, "version")?,
            named: [
                get_hash(item).ok(),
                get_previous(item).ok().flatten().map(|p| p.hash),
            ]
            .into_iter()
            .flatten()
            .collect(),
        })
    }
}

/// The transaction of one planned change, and where its new secret's item is.
struct Planned {
    items: Vec<TransactWriteItem>,
    new_secret_at: Option<usize>,
}

impl DynamoStore {
    /// The one guarded mutation every change to an existing key goes
    /// through: read the record (consistently), [`change::plan`] from it,
    /// commit every item in one transaction conditioned on the version read
    /// (the record) and, for each lookup item rewritten or deleted, on the
    /// item belonging to this key; when another change committed in between,
    /// read and plan again. Returns the plan that committed (its `after` is
    /// the committed record), or `None` when there was nothing to write.
    ///
    /// Every commit stamps the record (or, for a delete, its tombstone) with
    /// its transaction's token, so a commit whose answer was lost is
    /// recognised as ours when the resend's condition fails, never applied
    /// twice or answered as a failure.
    pub(crate) async fn mutate(
        &self,
        account: &AccountId,
        id: &KeyId,
        change: &Change<'_>,
        expected: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> Result<Option<Plan>, StoreError> {
        for attempt in 1..=MUTATE_ATTEMPTS {
            let item = self.get_record_item(account, id).await?;
            let (read, plan) = match record_from_item(&item) {
                Ok(current) => match change::plan(&current, change, expected, audit)? {
                    Some(plan) => (Read::of(&current), plan),
                    None => return Ok(None),
                },
                // Only its version and hashes are needed to delete a key: a
                // record that no longer decodes in full can still go.
                Err(_) if matches!(change, Change::Delete) => (
                    Read::raw(account, id, &item)?,
                    Plan {
                        after: None,
                        event: KeyEvent::deleted(id, audit),
                        expires: None,
                    },
                ),
                Err(e) => return Err(e),
            };
            let token = crate::material::random_base62(36);
            let mut planned = self.planned_items(&read, &plan, &token)?;
            let completes_at = planned.items.len();
            if let (Some(c), Some(after)) = (completion, &plan.after) {
                planned.items.push(self.completion_item(c, after)?);
            }
            let failed = match self.transact(&token, planned.items).await {
                Ok(TxOutcome::Done) => return Ok(Some(plan)),
                Ok(TxOutcome::ConditionFailed(failed)) => failed,
                Err(StoreError::Unavailable(e)) if is_idempotent_mismatch(&*e) => Vec::new(),
                Err(e) => return Err(e),
            };
            let settled = self
                .settle(account, id, read.version, &plan, &token)
                .await?;
            if settled == Settled::Committed {
                return Ok(Some(plan));
            }
            if completion.is_some() && failed_at(&failed, completes_at) {
                return Err(StoreError::IdempotencyLost);
            }
            if planned.new_secret_at.is_some_and(|i| failed_at(&failed, i)) {
                return Err(StoreError::AlreadyExists);
            }
            if settled == Settled::Unchanged && failed.iter().any(|f| *f) && !failed_at(&failed, 0)
            {
                // The record is as we read it, yet a lookup item's condition
                // failed: an item of this key's secrets belongs to another
                // key. Retrying cannot help.
                tracing::error!(
                    key_id = id.as_str(),
                    "a lookup item of this key belongs to another key: run the repair command"
                );
                return Err(StoreError::Corrupt(
                    "a lookup item of this key belongs to another key".to_owned(),
                ));
            }
            let ms = rand::rng().random_range(1..=(2 * u64::from(attempt)).min(40));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Err(StoreError::Unavailable(
            "the key kept changing while this change was planned".into(),
        ))
    }

    /// After a failed commit: was it ours after all, did another change
    /// commit first (a version other than `read_version`), or is the record
    /// as read? A key deleted by another change is `NotFound`.
    async fn settle(
        &self,
        account: &AccountId,
        id: &KeyId,
        read_version: u64,
        plan: &Plan,
        token: &str,
    ) -> Result<Settled, StoreError> {
        let ours = |item: &Item| {
            item.get("changeId")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(token)
        };
        match self.get_record_item(account, id).await {
            Ok(item) if ours(&item) => Ok(Settled::Committed),
            Ok(item) if get_n(&item, "version")? == read_version => Ok(Settled::Unchanged),
            Ok(_) => Ok(Settled::Raced),
            Err(StoreError::NotFound) if plan.after.is_none() => {
                let gone = self
                    .get_consistent(record_pk(account), &gone_sk(id))
                    .await?;
                match gone.as_ref() {
                    Some(item) if ours(item) => Ok(Settled::Committed),
                    _ => Err(StoreError::NotFound),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Every item `plan` writes, from the record as read.
    fn planned_items(&self, read: &Read, plan: &Plan, token: &str) -> Result<Planned, StoreError> {
        let (account, id) = (&read.account, &read.id);
        let seen = Item::from([(
            ":seen".to_owned(),
            AttributeValue::N(read.version.to_string()),
        )]);
        let version = HashMap::from([("#version".to_owned(), "version".to_owned())]);
        let mut items = vec![match &plan.after {
            Some(after) => self.record_rewrite(after, read.version, token)?,
            None => self.delete_where(
                record_pk(account),
                record_sk(id),
                "#version = :seen",
                version,
                seen,
            )?,
        }];
        let writes = change::lookup_writes(&read.named, plan.after.as_ref());
        let mut new_secret_at = None;
        for (hash, lookup, existed) in &writes.keep {
            if *existed {
                items.push(self.lookup_rewrite(hash, lookup)?);
            } else {
                new_secret_at = Some(items.len());
                items.push(self.put(
                    lookup_item_of(hash, lookup),
                    Some("attribute_not_exists(pk)"),
                )?);
            }
        }
        for hash in &writes.remove {
            let (names, values) = belongs(account, id);
            items.push(self.delete_where(
                lookup_pk(hash),
                LOOKUP_SK.to_owned(),
                "attribute_not_exists(pk) OR (#keyId = :kid AND #accountId = :acct)",
                names,
                values,
            )?);
        }
        let mut event_ttl = None;
        if plan.after.is_none() {
            let kept_until = plan.event.time + DELETED_EVENTS_KEPT;
            event_ttl = Some(kept_until);
            items.push(self.count_item(account, -1, None)?);
            items.push(self.put(
                Item::from([
                    ("pk".to_owned(), s(record_pk(account))),
                    ("sk".to_owned(), s(gone_sk(id))),
                    ("schemaVersion".to_owned(), schema_version()),
                    ("keyId".to_owned(), s(id.as_str())),
                    (
                        "deletedAt".to_owned(),
                        s(format_timestamp(&plan.event.time)),
                    ),
                    ("changeId".to_owned(), s(token)),
                    ("ttl".to_owned(), ttl_value(kept_until)),
                ]),
                None,
            )?);
        }
        items.push(self.put(event_item(account, &plan.event, event_ttl), None)?);
        if let Some(at) = &plan.expires {
            items.push(self.put(expiry_item(id, at), None)?);
        }
        Ok(Planned {
            items,
            new_secret_at,
        })
    }

    /// The record item set to `after` (every field a change can touch),
    /// only if it is still at version `seen`. `lastUsedAt`, which the
    /// authorizer writes without a version, is left as it is.
    fn record_rewrite(
        &self,
        after: &KeyRecord,
        seen: u64,
        token: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut sets = vec![
            "#name = :name",
            "prefix = :prefix",
            "#scopes = :scopes",
            "#active = :active",
            "updatedAt = :updatedAt",
            "keyHash = :keyHash",
            "#version = :next",
            "changeId = :token",
            "schemaVersion = :schema",
        ];
        let mut removes = Vec::new();
        let mut values = Item::from([
            (":name".to_owned(), s(after.name.as_str())),
            (":prefix".to_owned(), s(&after.prefix)),
            (":scopes".to_owned(), scopes_value(after.scopes)),
            (":active".to_owned(), AttributeValue::Bool(after.active)),
            (
                ":updatedAt".to_owned(),
                s(format_timestamp(&after.updated_at)),
            ),
            (":keyHash".to_owned(), s(after.hash.to_hex())),
            (
                ":next".to_owned(),
                AttributeValue::N(after.version.to_string()),
            ),
            (":seen".to_owned(), AttributeValue::N(seen.to_string())),
            (":token".to_owned(), s(token)),
            (":schema".to_owned(), schema_version()),
        ]);
        match &after.previous {
            Some(p) => {
                sets.extend(["previousKeyHash = :prev", "previousUntil = :prevUntil"]);
                values.insert(":prev".to_owned(), s(p.hash.to_hex()));
                values.insert(":prevUntil".to_owned(), s(format_timestamp(&p.until)));
            }
            None => removes.extend(["previousKeyHash", "previousUntil"]),
        }
        match after.deactivated_reason {
            Some(r) => {
                sets.push("deactivatedReason = :reason");
                values.insert(":reason".to_owned(), s(r.as_str()));
            }
            None => removes.push("deactivatedReason"),
        }
        let names = HashMap::from([
            ("#name".to_owned(), "name".to_owned()),
            ("#scopes".to_owned(), "scopes".to_owned()),
            ("#active".to_owned(), "active".to_owned()),
            ("#version".to_owned(), "version".to_owned()),
        ]);
        self.update_item(
            record_pk(&after.account_id),
            record_sk(&after.id),
            format!("SET {}{}", sets.join(", "), remove_clause(&removes)),
            Some("#version = :seen".to_owned()),
            names,
            values,
        )
    }

    /// A named secret's lookup item rewritten whole from the record (and
    /// created again if it is missing), only while it belongs to this key.
    /// The authorizer's `lastUsedAt` is left as it is.
    fn lookup_rewrite(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
    ) -> Result<TransactWriteItem, StoreError> {
        let (mut names, mut values) = belongs(&lookup.account_id, &lookup.key_id);
        names.insert("#scopes".to_owned(), "scopes".to_owned());
        names.insert("#active".to_owned(), "active".to_owned());
        names.insert("#ttl".to_owned(), "ttl".to_owned());
        values.insert(":scopes".to_owned(), scopes_value(lookup.scopes));
        values.insert(":active".to_owned(), AttributeValue::Bool(lookup.active));
        values.insert(":schema".to_owned(), schema_version());
        let mut sets = vec![
            "#accountId = :acct",
            "#keyId = :kid",
            "#scopes = :scopes",
            "#active = :active",
            "schemaVersion = :schema",
        ];
        let mut removes = Vec::new();
        match &lookup.expires_at {
            Some(t) => {
                sets.push("expiresAt = :expiresAt");
                values.insert(":expiresAt".to_owned(), s(format_timestamp(t)));
            }
            None => removes.push("expiresAt"),
        }
        match &lookup.grace_until {
            Some(t) => {
                sets.extend(["graceUntil = :graceUntil", "#ttl = :ttl"]);
                values.insert(":graceUntil".to_owned(), s(format_timestamp(t)));
                values.insert(":ttl".to_owned(), ttl_value(*t));
            }
            None => removes.extend(["graceUntil", "#ttl"]),
        }
        self.update_item(
            lookup_pk(hash),
            LOOKUP_SK.to_owned(),
            format!("SET {}{}", sets.join(", "), remove_clause(&removes)),
            Some("attribute_not_exists(pk) OR (#keyId = :kid AND #accountId = :acct)".to_owned()),
            names,
            values,
        )
    }

    fn delete_where(
        &self,
        pk: String,
        sk: String,
        condition: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build(),
        )
        .map(|d| TransactWriteItem::builder().delete(d).build())
    }

    /// Rewrites every lookup item of a key from its record, through the
    /// guarded mutation (a `repaired` event, a new version). The repair
    /// command's fix for a missing or stale lookup item.
    pub async fn repair_key(
        &self,
        account: &AccountId,
        id: &KeyId,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.mutate(account, id, &Change::Repair, None, audit, None)
            .await
            .map(|_| ())
    }

    /// Deletes a lookup item that claims key `id` of `account` while that
    /// key does not name its secret (or does not exist): in one transaction
    /// with a check that the record still does not name it, so a concurrent
    /// roll can never lose a secret to a repair. `false` when the item is no
    /// longer an orphan (or no longer there).
    pub async fn remove_orphan(
        &self,
        hash: &KeyHash,
        account: &AccountId,
        id: &KeyId,
    ) -> Result<bool, StoreError> {
        let (names, mut values) = belongs(account, id);
        values.insert(":hash".to_owned(), s(hash.to_hex()));
        let check = build(
            ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(record_pk(account)))
                .key("sk", s(record_sk(id)))
                .condition_expression(
                    "attribute_not_exists(pk) OR (keyHash <> :hash AND \
                     (attribute_not_exists(previousKeyHash) OR previousKeyHash <> :hash))",
                )
                .expression_attribute_values(":hash", s(hash.to_hex()))
                .build(),
        )?;
        values.remove(":hash");
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            self.delete_where(
                lookup_pk(hash),
                LOOKUP_SK.to_owned(),
                "#keyId = :kid AND #accountId = :acct",
                names,
                values,
            )?,
        ];
        let token = crate::material::random_base62(36);
        match self.transact(&token, items).await? {
            TxOutcome::Done => Ok(true),
            TxOutcome::ConditionFailed(_) => Ok(false),
        }
    }
}

/// ` REMOVE a, b`, or nothing.
fn remove_clause(removes: &[&str]) -> String {
    if removes.is_empty() {
        String::new()
    } else {
        format!(" REMOVE {}", removes.join(", "))
    }
}

/// The names and values of "this item belongs to key `id` of `account`".
fn belongs(account: &AccountId, id: &KeyId) -> (HashMap<String, String>, Item) {
    (
        HashMap::from([
            ("#keyId".to_owned(), "keyId".to_owned()),
            ("#accountId".to_owned(), "accountId".to_owned()),
        ]),
        Item::from([
            (":kid".to_owned(), s(id.as_str())),
            (":acct".to_owned(), s(account.as_str())),
        ]),
    )
}

/// DynamoDB's answer to a resend whose token it has seen with other
/// parameters. DynamoDB Local has been seen to give it for identical
/// resends too: the record's `changeId` decides what happened.
fn is_idempotent_mismatch(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<SdkError<TransactWriteItemsError>>()
        .and_then(SdkError::as_service_error)
        .is_some_and(|e| {
            matches!(
                e,
                TransactWriteItemsError::IdempotentParameterMismatchException(_)
            )
        })
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
        committed(
            self.mutate(
                account,
                id,
                &Change::Update(changes),
                expected_version,
                audit,
                None,
            )
            .await?,
        )
    }
}

impl RollKey for DynamoStore {
    async fn roll_with(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> Result<KeyRecord, StoreError> {
        let change = Change::Roll {
            hash: key.hash(),
            prefix: key.display_prefix(),
            grace,
        };
        committed(
            self.mutate(account, id, &change, expected_version, audit, completion)
                .await?,
        )
    }
}

impl DynamoStore {
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
    async fn delete_at(
        &self,
        account: &AccountId,
        id: &KeyId,
        expected: Option<u64>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.mutate(account, id, &Change::Delete, expected, audit, None)
            .await?;
        // After the commit, detached: marking the events for expiry is
        // best effort and must never delay or fail the answer (the
        // invocation's deadline could otherwise cut it and turn a committed
        // delete into a 503). In Lambda it may finish in a later invocation.
        let (store, account, id, at) = (self.clone(), account.clone(), id.clone(), audit.at);
        tokio::spawn(async move { store.expire_events(&account, &id, at).await });
        Ok(())
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
        let Some(lookup) = self.lookup(hash).await? else {
            return Ok(LeakOutcome::NotOurs);
        };
        if lookup.is_expired_at(audit.at) {
            return Ok(LeakOutcome::NotOurs);
        }
        let (account, id) = (&lookup.account_id, &lookup.key_id);
        match self
            .mutate(account, id, &Change::RevokeLeaked(*hash), None, audit, None)
            .await
        {
            Ok(Some(_)) => Ok(LeakOutcome::Revoked(id.clone())),
            Ok(None) => Ok(LeakOutcome::AlreadyRevoked(id.clone())),
            // Deleted, or rolled away from this secret, since the lookup.
            Err(StoreError::NotFound) => Ok(LeakOutcome::NotOurs),
            Err(e) => Err(e),
        }
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
                    .get_consistent(record_pk(account), &gone_sk(id))
                    .await?;
                out.as_ref()
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
            Err(err) if condition_failed(&err) => {
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
            Err(err) if condition_failed(&err) => Ok(true),
            Err(err) => Err(store_error(err)),
        }
    }
}
