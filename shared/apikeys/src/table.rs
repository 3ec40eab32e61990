//! The keys table's definition: the one source for its key schema. The local
//! create-table command and the tests use it; a test proves the SAM template
//! declares the same.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};

/// One key attribute of the table: name, DynamoDB type, role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: &'static str,
    /// `S`, `N` or `B`, as CloudFormation writes `AttributeType`.
    pub attribute_type: &'static str,
    /// `HASH` or `RANGE`, as CloudFormation writes `KeyType`.
    pub key_type: &'static str,
}

/// The keys table's key schema: generic string `pk`/`sk`, no secondary index,
/// on-demand billing.
pub const KEY_SCHEMA: [KeyAttribute; 2] = [
    KeyAttribute {
        name: "pk",
        attribute_type: "S",
        key_type: "HASH",
    },
    KeyAttribute {
        name: "sk",
        attribute_type: "S",
        key_type: "RANGE",
    },
];

/// Whether the table already existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExisted,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("could not build the CreateTable request")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    #[error("CreateTable failed")]
    Create(#[from] SdkError<CreateTableError>),
    #[error("DescribeTable failed")]
    Describe(#[from] SdkError<aws_sdk_dynamodb::operation::describe_table::DescribeTableError>),
    #[error("table `{0}` did not become ACTIVE in time")]
    NotActive(String),
}

/// Creates the keys table named `name` on the client's endpoint, unless it
/// exists, and waits until it is ACTIVE.
pub async fn create_table(client: &Client, name: &str) -> Result<Created, TableError> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for attr in KEY_SCHEMA {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr.name)
                    .attribute_type(ScalarAttributeType::from(attr.attribute_type))
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attr.name)
                    .key_type(KeyType::from(attr.key_type))
                    .build()?,
            );
    }
    let created = match req.send().await {
        Ok(_) => Created::Created,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            Created::AlreadyExisted
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..100 {
        let out = client.describe_table().table_name(name).send().await?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(created);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(TableError::NotActive(name.to_owned()))
}
