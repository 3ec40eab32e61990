use std::fmt;
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! scopes {
    ($($variant:ident => $text:literal, $label:literal,)+) => {
        /// One scope of the catalogue (`resource.action`), or [`Scope::All`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Scope {
            $($variant,)+
        }

        impl Scope {
            /// Every scope, `all` first, then the catalogue in its documented order.
            pub const EVERY: &'static [Scope] = &[$(Scope::$variant,)+];

            /// The exact string form, e.g. `links.read`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Scope::$variant => $text,)+
                }
            }

            /// What it grants, in words for the dashboard, e.g. "List and read links".
            pub const fn label(self) -> &'static str {
                match self {
                    $(Scope::$variant => $label,)+
                }
            }
        }

        impl FromStr for Scope {
            type Err = UnknownScope;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Scope::$variant),)+
                    _ => Err(UnknownScope(s.to_owned())),
                }
            }
        }
    };
}

scopes! {
    All => "all", "Every API-key endpoint",
    LinksRead => "links.read", "List and read links",
    LinksCreate => "links.create", "Create and duplicate links",
    LinksUpdate => "links.update", "Update links and their QR options",
    LinksDelete => "links.delete", "Archive and delete links",
    LinksPause => "links.pause", "Pause links",
    LinksResume => "links.resume", "Resume links",
    FoldersRead => "folders.read", "List and read folders",
    FoldersCreate => "folders.create", "Create folders",
    FoldersUpdate => "folders.update", "Update folders",
    FoldersDelete => "folders.delete", "Delete folders",
    TemplatesRead => "templates.read", "List and read QR templates",
    TemplatesCreate => "templates.create", "Create QR templates",
    TemplatesUpdate => "templates.update", "Update QR templates",
    TemplatesDelete => "templates.delete", "Delete QR templates",
    BulkCreate => "bulk.create", "Bulk-generate links",
    CafeRead => "cafe.read", "List and read Cafe menus",
    CafeCreate => "cafe.create", "Create Cafe menus",
    CafeUpdate => "cafe.update", "Update Cafe menus",
    CafeDelete => "cafe.delete", "Delete Cafe menus",
}

/// A resource's scopes, as the dashboard groups them: the part of each
/// scope before the dot, and a heading for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeGroup {
    /// The resource, e.g. `links`.
    pub name: &'static str,
    /// Its heading, e.g. "Links".
    pub label: &'static str,
}

/// The groups, in catalogue order. Every scope but [`Scope::All`] is in the
/// group its resource names ([`Scope::group`]).
pub const GROUPS: &[ScopeGroup] = &[
    ScopeGroup {
        name: "links",
        label: "Links",
    },
    ScopeGroup {
        name: "folders",
        label: "Folders",
    },
    ScopeGroup {
        name: "templates",
        label: "QR templates",
    },
    ScopeGroup {
        name: "bulk",
        label: "Bulk generation",
    },
    ScopeGroup {
        name: "cafe",
        label: "Cafe (digital menus)",
    },
];

impl Scope {
    /// The group a scope belongs to: its resource's; none for [`Scope::All`].
    pub fn group(self) -> Option<&'static ScopeGroup> {
        let (resource, _) = self.as_str().split_once('.')?;
        GROUPS.iter().find(|g| g.name == resource)
    }
}

/// A scope string that is not in the catalogue. Its message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeVisitor;
        impl Visitor<'_> for ScopeVisitor {
            type Value = Scope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope string such as `links.read`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scope, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ScopeVisitor)
    }
}

/// A set of scopes, duplicates folded. A bit set: copying and checking are free.
///
/// [`Scope::All`] satisfies every scope; the empty set satisfies none (it is
/// never read as "all").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    /// The set with no scope; it grants nothing.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= Self::bit(scope);
    }

    #[must_use]
    pub const fn with(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 | Self::bit(scope))
    }

    /// Whether a key holding this set may use a route that needs `required`.
    pub const fn allows(self, required: Scope) -> bool {
        self.contains(Scope::All) || self.contains(required)
    }

    /// The members in catalogue order (`all` first).
    pub fn iter(self) -> impl Iterator<Item = Scope> + Clone {
        Scope::EVERY
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// Parses scope strings, folding duplicates; the first unknown one is the error.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, UnknownScope> {
        items.into_iter().map(str::parse).collect()
    }

    /// Parses the comma-separated form produced by [`fmt::Display`]; `""` is the empty set.
    pub fn parse_comma_separated(s: &str) -> Result<ScopeSet, UnknownScope> {
        if s.is_empty() {
            return Ok(ScopeSet::EMPTY);
        }
        ScopeSet::parse(s.split(','))
    }

    const fn bit(scope: Scope) -> u32 {
        1 << scope as u8
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::EMPTY;
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

impl From<Scope> for ScopeSet {
    fn from(scope: Scope) -> Self {
        ScopeSet::EMPTY.with(scope)
    }
}

/// Comma-separated, in catalogue order: the form the authorizer context carries.
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A JSON array of scope strings.
impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for scope in self.iter() {
            seq.serialize_element(scope.as_str())?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = ScopeSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of scope strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScopeSet, A::Error> {
                let mut set = ScopeSet::EMPTY;
                while let Some(scope) = seq.next_element::<Scope>()? {
                    set.insert(scope);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(SetVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_but_all_is_in_its_resources_group_in_catalogue_order() {
        assert_eq!(Scope::All.group(), None);
        let mut seen: Vec<&str> = Vec::new();
        for s in &Scope::EVERY[1..] {
            let g = s.group().unwrap_or_else(|| panic!("{s} has no group"));
            assert!(
                s.as_str().starts_with(&format!("{}.", g.name)),
                "{s} in {}",
                g.name
            );
            if seen.last() != Some(&g.name) {
                assert!(!seen.contains(&g.name), "{} is not contiguous", g.name);
                seen.push(g.name);
            }
        }
        let names: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
        assert_eq!(seen, names, "every group has scopes, in this order");
    }

    #[test]
    fn labels_are_distinct_sentences() {
        let labels: std::collections::HashSet<&str> =
            Scope::EVERY.iter().map(|s| s.label()).collect();
        assert_eq!(labels.len(), Scope::EVERY.len());
        assert!(
            Scope::EVERY
                .iter()
                .all(|s| s.label().chars().next().is_some_and(char::is_uppercase))
        );
        assert_eq!(Scope::LinksRead.label(), "List and read links");
    }

    #[test]
    fn catalogue_has_nineteen_scopes_plus_all() {
        assert_eq!(Scope::EVERY.len(), 20);
        assert_eq!(Scope::EVERY[0], Scope::All);
        assert!(Scope::EVERY[1..].iter().all(|s| s.as_str().contains('.')));
    }

    #[test]
    fn every_scope_round_trips_through_its_string() {
        for &scope in Scope::EVERY {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(scope.to_string(), scope.as_str());
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        }
    }

    #[test]
    fn unknown_scope_is_an_error_naming_the_value() {
        for bad in [
            "links.READ",
            "Links.read",
            "links",
            "",
            "all ",
            "links.*",
            "*",
        ] {
            let err = bad.parse::<Scope>().unwrap_err();
            assert_eq!(err.to_string(), format!("unknown scope `{bad}`"));
        }
        let err = serde_json::from_str::<ScopeSet>(r#"["links.read","links.write"]"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown scope `links.write`"),
            "{err}"
        );
    }

    #[test]
    fn scope_set_folds_duplicates_and_prints_in_catalogue_order() {
        let set: ScopeSet =
            serde_json::from_str(r#"["cafe.read","links.read","cafe.read"]"#).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.to_string(), "links.read,cafe.read");
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["links.read","cafe.read"]"#
        );
        assert_eq!(ScopeSet::parse_comma_separated(&set.to_string()), Ok(set));
    }

    #[test]
    fn empty_set_allows_nothing_and_all_allows_everything() {
        for &scope in Scope::EVERY {
            assert!(!ScopeSet::EMPTY.allows(scope));
            assert!(ScopeSet::from(Scope::All).allows(scope));
        }
        assert_eq!(ScopeSet::parse_comma_separated(""), Ok(ScopeSet::EMPTY));
        assert_eq!(ScopeSet::EMPTY.to_string(), "");
    }

    #[test]
    fn a_scope_allows_only_itself() {
        for &held in &Scope::EVERY[1..] {
            for &needed in &Scope::EVERY[1..] {
                assert_eq!(ScopeSet::from(held).allows(needed), held == needed);
            }
        }
    }

    #[test]
    fn scope_set_rejects_non_arrays() {
        assert!(serde_json::from_str::<ScopeSet>(r#""links.read""#).is_err());
        assert!(serde_json::from_str::<ScopeSet>(r#"[1]"#).is_err());
    }
}
