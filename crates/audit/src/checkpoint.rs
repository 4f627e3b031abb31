//! Signed checkpoints: `{seq, hash, ts}` of a record, signed with Ed25519. An *anchor* is a
//! checkpoint written before retention deletes records up to and including `seq`: verification
//! then starts at `seq + 1` with `hash` as the expected `prev_hash`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::canonical;
use crate::signing::{CheckpointSigner, TrustedKeys};

/// What a checkpoint vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// Every `checkpoint_records` records or `checkpoint_interval`.
    Checkpoint,
    /// The new start of the chain after retention.
    Anchor,
}

impl CheckpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Checkpoint => "checkpoint",
            CheckpointKind::Anchor => "anchor",
        }
    }

    pub fn parse(text: &str) -> Option<CheckpointKind> {
        match text {
            "checkpoint" => Some(CheckpointKind::Checkpoint),
            "anchor" => Some(CheckpointKind::Anchor),
            _ => None,
        }
    }
}

/// One row of `audit_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub kind: CheckpointKind,
    /// The hash of record `seq`.
    pub hash: String,
    /// When the checkpoint was signed (RFC 3339 UTC).
    pub ts: String,
    /// Id of the signing key (see [`crate::signing::key_id`]).
    pub key_id: String,
    /// The signing key's public half, hex (informational: verification trusts only the keys
    /// it is given, never this column).
    pub public_key: String,
    /// Ed25519 signature over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes: the RFC 8785 JSON of `{seq, hash, ts}`, plus `"anchor": true` for an
    /// anchor so that neither can be passed off as the other.
    pub fn message(kind: CheckpointKind, seq: u64, hash: &str, ts: &str) -> String {
        let value = match kind {
            CheckpointKind::Checkpoint => json!({"seq": seq, "hash": hash, "ts": ts}),
            CheckpointKind::Anchor => json!({"seq": seq, "hash": hash, "ts": ts, "anchor": true}),
        };
        canonical::to_string(&value)
    }

    pub fn sign(
        signer: &CheckpointSigner,
        kind: CheckpointKind,
        seq: u64,
        hash: &str,
        ts: &str,
    ) -> Checkpoint {
        let message = Checkpoint::message(kind, seq, hash, ts);
        Checkpoint {
            seq,
            kind,
            hash: hash.to_owned(),
            ts: ts.to_owned(),
            key_id: signer.id().to_owned(),
            public_key: hex::encode(signer.verifying_key().as_bytes()),
            signature: hex::encode(signer.sign(message.as_bytes()).to_bytes()),
        }
    }

    /// Whether one of `trusted` signed exactly this `{seq, hash, ts}`.
    pub fn verify(&self, trusted: &TrustedKeys) -> Result<(), String> {
        let signature = hex::decode(&self.signature).map_err(|_| "signature is not hex")?;
        let message = Checkpoint::message(self.kind, self.seq, &self.hash, &self.ts);
        trusted.verify(&self.key_id, message.as_bytes(), &signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_seq_hash_ts_and_kind() {
        let signer = CheckpointSigner::generate().unwrap();
        let trusted = TrustedKeys::new([signer.verifying_key()]);
        let good = Checkpoint::sign(&signer, CheckpointKind::Checkpoint, 7, "ab", "t");
        assert_eq!(good.verify(&trusted), Ok(()));
        let edits: Vec<fn(&mut Checkpoint)> = vec![
            |c| c.seq = 8,
            |c| c.hash = "ac".into(),
            |c| c.ts = "u".into(),
            |c| c.kind = CheckpointKind::Anchor,
        ];
        for edit in edits {
            let mut bad = good.clone();
            edit(&mut bad);
            assert!(bad.verify(&trusted).is_err(), "{bad:?}");
        }
        let other = CheckpointSigner::generate().unwrap();
        let forged = Checkpoint::sign(&other, CheckpointKind::Checkpoint, 7, "ab", "t");
        assert!(forged.verify(&trusted).unwrap_err().contains("not trusted"));
        assert_eq!(
            Checkpoint::message(CheckpointKind::Checkpoint, 7, "ab", "t"),
            r#"{"hash":"ab","seq":7,"ts":"t"}"#
        );
    }
}
