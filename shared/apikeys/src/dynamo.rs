//! The DynamoDB key store: one table, two items per key (see the
//! architecture document, "Data model").
//!
//! - lookup item `pk = HASH#<sha256 hex>`, `sk = HASH`: accountId, keyId, scopes, active, expiresAt;
//! - record item `pk = ACCT#<accountId>`, `sk = KEY#<keyId>`: the record, its hash and version.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Builder, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
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
/// architecture document's: connect 200 ms, attempt 500 ms, operation 1.5 s,
/// at most 2 attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_millis(200),
            attempt_timeout: Duration::from_millis(500),
            operation_timeout: Duration::from_millis(1500),
            max_attempts: 2,
        }
    }
}

impl ClientSettings {
    /// For tools and tests against DynamoDB Local, never a request path:
    /// DynamoDB Local answers slowly from cold (about 2 s) and on a loaded
    /// machine, so these allow far more than Lambda's budget.
    pub const LOCAL: ClientSettings = ClientSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_attempts: 3,
    };

    /// Builds a DynamoDB client from the environment (region, credentials,
    /// and the standard endpoint override `AWS_ENDPOINT_URL_DYNAMODB`) with
    /// these timeouts. Call once per cold start.
    pub async fn client(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// The SDK configuration behind [`ClientSettings::client`].
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(self.max_attempts),
            )
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
}

/// How often an update or delete is tried when DynamoDB cancels its
/// transaction for a conflict with a concurrent one on the same items.
pub const CONFLICT_ATTEMPTS: u32 = 12;

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_record(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(record_pk(account)))
            .key("sk", s(record_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item()
            .ok_or(StoreError::NotFound)
            .and_then(record_from_item)
    }

    /// Runs a transaction, retrying (with jitter) while DynamoDB cancels it
    /// for a conflict with a concurrent transaction. Returns the cancellation
    /// codes when a condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxOutcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(TxOutcome::Done),
                Err(err) => {
                    let codes = cancellation_codes(&err);
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                        return Ok(TxOutcome::ConditionFailed);
                    }
                    let conflict = codes.iter().any(|c| c == "TransactionConflict")
                        || matches!(
                            err.as_service_error(),
                            Some(TransactWriteItemsError::TransactionInProgressException(_))
                        );
                    if conflict && attempt < CONFLICT_ATTEMPTS {
                        let ms = rand::rng().random_range(5..=20 * u64::from(attempt));
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        continue;
                    }
                    return Err(unavailable(err));
                }
            }
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

fn unavailable<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(Box::new(err))
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

fn lookup_item(record: &KeyRecord) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(lookup_pk(&record.hash))),
        ("sk".to_owned(), s(LOOKUP_SK)),
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

fn get_scopes(item: &Item) -> Result<ScopeSet, StoreError> {
    let list = item
        .get("scopes")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt("scopes"))?;
    list.iter()
        .map(|v| v.as_s().ok().and_then(|s| s.parse().ok()))
        .collect::<Option<ScopeSet>>()
        .ok_or_else(|| corrupt("scopes"))
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

fn lookup_from_item(item: &Item) -> Result<KeyLookup, StoreError> {
    Ok(KeyLookup {
        account_id: get_account(item)?,
        key_id: get_key_id(item)?,
        scopes: get_scopes(item)?,
        active: get_bool(item, "active")?,
        expires_at: get_opt_time(item, "expiresAt")?,
    })
}

fn record_from_item(item: &Item) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: get_key_id(item)?,
        account_id: get_account(item)?,
        name: KeyName::parse(get_s(item, "name")?).map_err(|_| corrupt("name"))?,
        prefix: get_s(item, "prefix")?.to_owned(),
        scopes: get_scopes(item)?,
        active: get_bool(item, "active")?,
        created_at: get_time(item, "createdAt")?,
        updated_at: get_time(item, "updatedAt")?,
        expires_at: get_opt_time(item, "expiresAt")?,
        created_by: get_s(item, "createdBy")?.to_owned(),
        hash: KeyHash::from_hex(get_s(item, "keyHash")?).ok_or_else(|| corrupt("keyHash"))?,
        version: get_s_n(item, "version")?,
    })
}

fn get_s_n(item: &Item, field: &str) -> Result<u64, StoreError> {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt(field))
}

fn build<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(unavailable)
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
            .map_err(unavailable)?;
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
        let limit = limit.clamp(1, MAX_PAGE);
        // One more than asked: a next token only when more keys follow.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
            .expression_attribute_values(":pk", s(record_pk(account)))
            .expression_attribute_values(":sk", s("KEY#"))
            .consistent_read(true)
            .limit(i32::from(limit) + 1)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut items = out
            .items()
            .iter()
            .map(record_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = if items.len() > usize::from(limit) {
            items.truncate(usize::from(limit));
            items.last().map(|r| token::encode(account, &r.id))
        } else {
            None
        };
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
        // The hash never changes: read it to reach the lookup item.
        let current = self.get_record(account, id).await?;

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
                            .key("pk", s(lookup_pk(&current.hash)))
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
        match (expected_version, self.get_record(account, id).await) {
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
        let current = self.get_record(account, id).await?;
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
            delete(lookup_pk(&current.hash), LOOKUP_SK.to_owned(), None)?,
        ];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed => Err(StoreError::NotFound),
        }
    }
}
