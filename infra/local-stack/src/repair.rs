//! Finds every break of the invariant between a key's items in a table and,
//! when asked, repairs it through the store's guarded writes: a missing or
//! stale lookup item is rewritten from its record (a new version and a
//! `repaired` event, conditioned like every change), an orphan lookup item
//! is deleted in one transaction with a check that its key still does not
//! name it. The `repair-keys` command's work.

use apikeys::dynamo::DynamoStore;
use apikeys::invariant::{self, Violation};
use apikeys::{Audit, StoreError};

/// What a run found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// Every violation found before anything was repaired.
    pub found: Vec<Violation>,
    /// Keys rewritten from their records.
    pub keys_rewritten: usize,
    /// Orphan lookup items deleted.
    pub orphans_removed: usize,
    /// What a check after the repair still found (empty on a dry run: not checked).
    pub remaining: Vec<Violation>,
}

/// Checks `store`'s table; with `apply`, repairs every violation that has a
/// key to go through, then checks again.
pub async fn run(store: &DynamoStore, apply: bool) -> Result<Report, StoreError> {
    let now = chrono::Utc::now();
    let found = invariant::check(&store.snapshot().await?, now);
    let mut report = Report {
        found,
        ..Report::default()
    };
    if !apply {
        return Ok(report);
    }
    let audit = Audit::system("repair-keys", now);
    let mut rewritten = std::collections::BTreeSet::new();
    for v in &report.found {
        match v {
            Violation::MissingLookup { account, key, .. }
            | Violation::StaleLookup { account, key, .. } => {
                if !rewritten.insert((account.clone(), key.clone())) {
                    continue;
                }
                match store.repair_key(account, key, &audit).await {
                    Ok(()) => report.keys_rewritten += 1,
                    // Deleted since the scan: its items went with it.
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            Violation::Orphan { account, key, hash } => {
                if store.remove_orphan(hash, account, key).await? {
                    report.orphans_removed += 1;
                }
            }
            Violation::Undecodable { .. } => {}
        }
    }
    report.remaining = invariant::check(&store.snapshot().await?, chrono::Utc::now());
    Ok(report)
}
