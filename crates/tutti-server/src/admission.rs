//! The composition root's side of the live hub's interfaces: who may perform (the
//! configured performer token, or an account of the management API allowed to perform the
//! show's ensemble), which guests belong to a show (device tokens in the store), and the
//! embedded engine's PCM for the listen stream.
//!
//! Must never: block a connection's task on SQLite (the store is async), or admit anyone
//! when the configured token is empty.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use tutti_live::{token_eq, Admission, BoxFuture, PcmSource};
use tutti_protocol::{ErrorCode, FrameError};
use tutti_show::ShowRuntime;
use tutti_sound::AudioOut;

/// Performers and guests as this server admits them.
pub struct ServerAdmission {
    /// The configured (or generated) performer token.
    pub token: String,
    /// The management API: accounts, ensembles, device tokens.
    pub api: tutti_api::ApiState,
}

impl ServerAdmission {
    async fn performer_of(&self, token: Option<&str>, show: &ShowRuntime) -> bool {
        if token_eq(token, &self.token) {
            return true;
        }
        let Some(token) = token else { return false };
        let store = &self.api.store;
        let ensemble = match store.show(show.show_id).await {
            Ok(Some(row)) => match store.piece(row.piece_id).await {
                Ok(Some(piece)) => piece.ensemble_id,
                _ => None,
            },
            _ => None,
        };
        self.api.may_perform(token, ensemble).await
    }

    async fn guest_of(&self, token: &str, show: &ShowRuntime) -> Result<i64, FrameError> {
        let refused = |why: &str| {
            FrameError::new(
                ErrorCode::Unauthorized,
                format!("device token refused: {why}"),
            )
        };
        let guest = self
            .api
            .store
            .guest(tutti_api::auth::token_hash(token))
            .await
            .map_err(|e| {
                FrameError::new(
                    ErrorCode::Internal,
                    format!("could not check the device token: {e}"),
                )
            })?
            .ok_or_else(|| refused("unknown device token"))?;
        if guest.show_id != show.show_id {
            return Err(refused(&format!(
                "the device token belongs to another show, not '{}'",
                show.code
            )));
        }
        Ok(guest.id)
    }
}

impl Admission for ServerAdmission {
    fn performer<'a>(
        &'a self,
        token: Option<&'a str>,
        show: &'a ShowRuntime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(self.performer_of(token, show))
    }

    fn guest<'a>(
        &'a self,
        token: &'a str,
        show: &'a ShowRuntime,
    ) -> BoxFuture<'a, Result<i64, FrameError>> {
        Box::pin(self.guest_of(token, show))
    }
}

/// The embedded engine's output as the listen stream's source.
pub struct EnginePcm(pub Arc<AudioOut>);

impl PcmSource for EnginePcm {
    fn format_frame(&self) -> String {
        self.0.format_frame()
    }

    fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.0.pcm.subscribe()
    }
}
