//! Protocol revisions and eras.

/// A protocol revision this gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Revision {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// How a revision conveys version and capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// `initialize` handshake, sessions (2025-11-25 and earlier).
    Legacy,
    /// Per-request `_meta`, stateless (2026-07-28 and later).
    Modern,
}

impl Revision {
    /// Newest first: the order advertised in `supportedVersions`.
    pub const ALL: [Revision; 4] = [
        Self::V2026_07_28,
        Self::V2025_11_25,
        Self::V2025_06_18,
        Self::V2025_03_26,
    ];
    pub const LATEST: Revision = Self::V2026_07_28;
    pub const LATEST_LEGACY: Revision = Self::V2025_11_25;

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    pub const fn era(self) -> Era {
        match self {
            Self::V2026_07_28 => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// The version to answer a legacy `initialize` with: the client's when we speak it,
    /// else our latest legacy revision (the client then decides whether to continue).
    pub fn negotiate_legacy(requested: &str) -> Revision {
        match Self::parse(requested) {
            Some(r) if r.era() == Era::Legacy => r,
            _ => Self::LATEST_LEGACY,
        }
    }

    pub fn supported_strings() -> Vec<&'static str> {
        Self::ALL.iter().map(|r| r.as_str()).collect()
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `_meta` keys of the 2026-07-28 revision.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let rows = [
            ("2025-06-18", Revision::V2025_06_18),
            ("2025-11-25", Revision::V2025_11_25),
            ("2025-03-26", Revision::V2025_03_26),
            ("2026-07-28", Revision::V2025_11_25),
            ("1900-01-01", Revision::V2025_11_25),
            ("", Revision::V2025_11_25),
        ];
        for (asked, want) in rows {
            assert_eq!(Revision::negotiate_legacy(asked), want, "{asked}");
        }
    }

    #[test]
    fn round_trip() {
        for r in Revision::ALL {
            assert_eq!(Revision::parse(r.as_str()), Some(r));
        }
        assert_eq!(Revision::LATEST.era(), Era::Modern);
    }
}
