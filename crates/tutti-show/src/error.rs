//! The show layer's error: what can stop a show from being built or restored. Frame-level
//! problems (bad inputs, refused overrides) are `tutti_protocol::FrameError`s with stable
//! codes instead; [`crate::runtime`] maps the engine's errors to them in one place.

/// Why a show could not be built or restored.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// The consensus engine refused the piece's configuration.
    #[error("piece {piece}: rejected by the consensus engine: {reason}")]
    Engine {
        /// The piece's slug.
        piece: String,
        /// What the engine said.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tutti_store::StoreError),
}
