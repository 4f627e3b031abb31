//! What the `keys` and `token` commands do, against the store a configuration names.

use std::time::SystemTime;

use portcullis_config::Config;
use portcullis_store::Store;

use crate::apikey::{CreatedKey, KeyInfo, KeyStore, NewKey};
use crate::error::AuthnError;
use crate::minted::{self, MintRequest, MintedToken, SigningKeys};
use crate::pepper::Pepper;

async fn open(config: &Config) -> Result<Store, AuthnError> {
    Ok(Store::open(&config.storage.url).await?)
}

/// `keys create`: a new API key, returned once.
pub async fn create_key(config: &Config, new: NewKey) -> Result<CreatedKey, AuthnError> {
    let pepper = Pepper::require(config)?;
    let store = open(config).await?;
    let keys = KeyStore::open(store.clone()).await?;
    let created = keys.create(&pepper, new, portcullis_store::now_ms()).await;
    store.close().await;
    created
}

/// `keys list`: every key, oldest first (never the key or its digest).
pub async fn list_keys(config: &Config) -> Result<Vec<KeyInfo>, AuthnError> {
    let store = open(config).await?;
    let listed = KeyStore::open(store.clone()).await?.list().await;
    store.close().await;
    listed
}

/// `keys revoke ID`: the key is refused by every replica within a second.
pub async fn revoke_key(config: &Config, id: &str) -> Result<KeyInfo, AuthnError> {
    let store = open(config).await?;
    let revoked = KeyStore::open(store.clone())
        .await?
        .revoke(id, portcullis_store::now_ms())
        .await;
    store.close().await;
    revoked
}

/// `token mint`: a gateway-signed access token for `req` (audience default `auth.resource`).
pub async fn mint_token(config: &Config, req: MintRequest) -> Result<MintedToken, AuthnError> {
    let pepper = Pepper::require(config)?;
    let store = open(config).await?;
    let keys = SigningKeys::open(store.clone()).await?;
    let minted = minted::mint(
        &keys,
        &pepper,
        &config.auth.resource,
        req,
        SystemTime::now(),
    )
    .await;
    store.close().await;
    minted
}
