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

use crate::material::KeyHash;
use crate::model::{
    AccountId, KeyChanges, KeyId, KeyLookup, KeyName, KeyRecord, Page, Timestamp, format_timestamp,
    parse_timestamp,
};
use crate::store::{
    CreateKey, DeleteKey, GetKey, ListKeys, LookupKey, MAX_PAGE, StoreError, UpdateKey, token,
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
                return Ok(TxOutcome::ConditionFailed);
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
    /// A condition of one of the items failed.
    ConditionFailed,
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

fn lookup_from_item(item: &Item) -> Result<KeyLookup, StoreError> {
    let key_id = get_key_id(item)?;
    Ok(KeyLookup {
        account_id: get_account(item)?,
        scopes: get_scopes(item, &key_id),
        active: get_bool(item, "active")?,
        expires_at: get_opt_time(item, "expiresAt")?,
        key_id,
    })
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
        id,
    })
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

impl CreateKey for DynamoStore {
    async fn create(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let put = |item: Item| {
            build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )
            .map(|p| TransactWriteItem::builder().put(p).build())
        };
        let items = vec![put(record_item(record))?, put(lookup_item(record))?];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed => Err(StoreError::AlreadyExists),
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

impl UpdateKey for DynamoStore {
    async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<KeyRecord, StoreError> {
        // The hash never changes: read it to reach the lookup item. A record
        // that cannot be decoded is refused here, before anything is written.
        let hash = self.get_record(account, id).await?.hash;

        let mut sets = vec!["#updatedAt = :updatedAt"];
        let mut names = HashMap::from([
            ("#updatedAt".to_owned(), "updatedAt".to_owned()),
            ("#version".to_owned(), "version".to_owned()),
        ]);
        let mut values = Item::from([
            (":updatedAt".to_owned(), s(format_timestamp(&now))),
            (":one".to_owned(), AttributeValue::N("1".to_owned())),
        ]);
        let mut lookup_sets = Vec::new();
        let mut lookup_names = HashMap::new();
        let mut lookup_values = Item::new();
        if let Some(name) = &changes.name {
            sets.push("#name = :name");
            names.insert("#name".to_owned(), "name".to_owned());
            values.insert(":name".to_owned(), s(name.as_str()));
        }
        if let Some(scopes) = changes.scopes {
            sets.push("#scopes = :scopes");
            lookup_sets.push("#scopes = :scopes");
            for n in [&mut names, &mut lookup_names] {
                n.insert("#scopes".to_owned(), "scopes".to_owned());
            }
            for v in [&mut values, &mut lookup_values] {
                v.insert(":scopes".to_owned(), scopes_value(scopes));
            }
        }
        if let Some(active) = changes.active {
            sets.push("#active = :active");
            lookup_sets.push("#active = :active");
            for n in [&mut names, &mut lookup_names] {
                n.insert("#active".to_owned(), "active".to_owned());
            }
            for v in [&mut values, &mut lookup_values] {
                v.insert(":active".to_owned(), AttributeValue::Bool(active));
            }
        }
        let mut condition = "attribute_exists(pk)".to_owned();
        if let Some(v) = expected_version {
            condition.push_str(" AND #version = :expected");
            values.insert(":expected".to_owned(), AttributeValue::N(v.to_string()));
        }

        let mut items = vec![
            TransactWriteItem::builder()
                .update(build(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(record_pk(account)))
                        .key("sk", s(record_sk(id)))
                        .update_expression(format!("SET {} ADD #version :one", sets.join(", ")))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build(),
                )?)
                .build(),
        ];
        if !lookup_sets.is_empty() {
            items.push(
                TransactWriteItem::builder()
                    .update(build(
                        Update::builder()
                            .table_name(&self.table)
                            .key("pk", s(lookup_pk(&hash)))
                            .key("sk", s(LOOKUP_SK))
                            .update_expression(format!("SET {}", lookup_sets.join(", ")))
                            .condition_expression("attribute_exists(pk)")
                            .set_expression_attribute_names(Some(lookup_names))
                            .set_expression_attribute_values(Some(lookup_values))
                            .build(),
                    )?)
                    .build(),
            );
        }
        match self.transact(items).await? {
            TxOutcome::Done => self.get_record(account, id).await,
            TxOutcome::ConditionFailed => Err(self
                .why_condition_failed(account, id, expected_version)
                .await),
        }
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
            (Some(_), Ok(_)) => StoreError::VersionConflict,
            // Exists again without a version condition: only a delete and a
            // re-create with the same id could do that, and ids are random.
            (None, Ok(_)) => StoreError::NotFound,
        }
    }
}

impl DeleteKey for DynamoStore {
    async fn delete(&self, account: &AccountId, id: &KeyId) -> Result<(), StoreError> {
        // Only the hash is needed (to reach the lookup item), so a record
        // that no longer decodes in full can still be deleted.
        let hash = get_hash(&self.get_record_item(account, id).await?)?;
        let delete = |pk: String, sk: String, condition: Option<&str>| {
            build(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .set_condition_expression(condition.map(str::to_owned))
                    .build(),
            )
            .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        // The record must still be there; the lookup item goes with it unconditionally.
        let items = vec![
            delete(
                record_pk(account),
                record_sk(id),
                Some("attribute_exists(pk)"),
            )?,
            delete(lookup_pk(&hash), LOOKUP_SK.to_owned(), None)?,
        ];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed => Err(StoreError::NotFound),
        }
    }
}
