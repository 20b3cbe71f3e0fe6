//! The arguments of the management client's commands (`tutti login`, `logout`, `pieces`,
//! `specs`, `shows`, `export`, `ensembles`, `members`, `users`, `webhooks`) and their
//! mapping onto [`tutti_client::commands`]. Values are checked by clap before anything is
//! sent (ranges, choices), naming the flag.
//!
//! Must never: make a request itself or format output (the library does both).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tutti_client::commands::{
    account, ensembles, export, members, pieces, shows, specs, users, webhooks,
};
use tutti_client::{Api, ClientError, Page, Store};
use tutti_spec::ExportFormat;

/// Options shared by every client command.
#[derive(Args, Clone, Debug)]
pub struct ClientOpts {
    /// Server address, e.g. http://127.0.0.1:7878 (default: the last one logged in to).
    #[arg(long, global = true, env = "TUTTI_SERVER")]
    pub server: Option<String>,
    /// Directory of the stored logins (default: $XDG_CONFIG_HOME/tutti or ~/.config/tutti).
    #[arg(long, global = true, env = "TUTTI_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientOpts {
    fn api(&self) -> Result<Api, ClientError> {
        Api::open(self.server.as_deref(), Store::new(self.config_dir.clone())?)
    }
}

/// `tutti login`.
#[derive(Args, Clone, Debug)]
pub struct LoginArgs {
    /// User name (asked for when missing).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from the first line of stdin (for scripts). Otherwise
    /// TUTTI_PASSWORD, else it is asked for without echo.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Piece lifecycle states.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PieceState {
    /// Being written.
    Draft,
    /// In rehearsal.
    Rehearsal,
    /// Ready to perform.
    Ready,
    /// Archived (final).
    Archived,
}

/// Show lifecycle states one can move to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShowState {
    /// Running.
    Live,
    /// Paused.
    Paused,
    /// Ended (final).
    Ended,
}

/// Show kinds.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShowKind {
    /// A rehearsal.
    Rehearsal,
    /// A performance.
    Performance,
}

/// Roles inside an ensemble.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MemberRole {
    /// Manages members, and everything else in the ensemble.
    Owner,
    /// Edits the ensemble's pieces, specs, shows and webhooks.
    Performer,
    /// Reads, and moves shows along their lifecycle.
    Crew,
}

/// The name clap shows for a value (what the API expects too).
fn name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// Paging of list commands.
#[derive(Args, Clone, Debug)]
pub struct PageArgs {
    /// Items per page (1–100).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Continue after this cursor (printed after a full page).
    #[arg(long)]
    pub cursor: Option<String>,
}

impl PageArgs {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// `tutti pieces …`.
#[derive(Subcommand, Clone, Debug)]
pub enum PiecesCmd {
    /// List the pieces you can see.
    List {
        /// Only this ensemble's pieces.
        #[arg(long)]
        ensemble: Option<i64>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one piece (id or slug).
    Show {
        /// Piece id or slug.
        piece: String,
    },
    /// Create a piece in an ensemble.
    Create {
        /// The ensemble id.
        #[arg(long)]
        ensemble: i64,
        /// URL-safe slug, [a-z0-9-]{1,64}.
        #[arg(long)]
        slug: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Idempotency key: the same key and body replay the first answer.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Move a piece along its lifecycle (draft → rehearsal → ready → archived).
    Transition {
        /// Piece id or slug.
        piece: String,
        /// The new state.
        #[arg(value_enum)]
        to: PieceState,
    },
}

/// `tutti specs …`.
#[derive(Subcommand, Clone, Debug)]
pub enum SpecsCmd {
    /// List a piece's spec versions.
    List {
        /// Piece id or slug.
        piece: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a spec version (default: the current one) as a readable sheet.
    Show {
        /// Piece id or slug.
        piece: String,
        /// Version number (default: current).
        version: Option<i64>,
    },
    /// Upload a spec file (TOML or JSON, checked locally first) as a new draft version.
    Draft {
        /// Piece id or slug.
        piece: String,
        /// The spec file (.json for JSON, anything else is read as TOML).
        #[arg(long)]
        file: PathBuf,
        /// A note kept with the version.
        #[arg(long)]
        note: Option<String>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Make a version the current one (the previous current is superseded).
    Publish {
        /// Piece id or slug.
        piece: String,
        /// Version number.
        version: i64,
    },
}

/// `tutti shows …`.
#[derive(Subcommand, Clone, Debug)]
pub enum ShowsCmd {
    /// List shows: of one piece, or of every piece you can see.
    List {
        /// Only this piece's shows (id or slug).
        #[arg(long)]
        piece: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one show.
    Show {
        /// Show id.
        show: i64,
    },
    /// Create a show of a piece.
    Create {
        /// Piece id or slug.
        piece: String,
        /// Rehearsal or performance.
        #[arg(long, value_enum, default_value = "rehearsal")]
        kind: ShowKind,
        /// The spec version it runs (default: the current one).
        #[arg(long)]
        spec_version: Option<i64>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Move a show along its lifecycle (scheduled → live ⇄ paused → ended).
    Transition {
        /// Show id.
        show: i64,
        /// The new state.
        #[arg(value_enum)]
        to: ShowState,
    },
}

/// `tutti export …`.
#[derive(Subcommand, Clone, Debug)]
pub enum ExportCmd {
    /// A spec version as JSON, TOML or Markdown.
    Spec {
        /// Piece id or slug.
        piece: String,
        /// Version number (default: current).
        #[arg(long)]
        version: Option<i64>,
        /// json, toml or markdown.
        #[arg(long, default_value = "toml", value_parser = parse_format)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// A show's metadata and timeline as JSON.
    Show {
        /// Show id.
        show: i64,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

fn parse_format(s: &str) -> Result<ExportFormat, String> {
    s.parse::<ExportFormat>()
        .map_err(|_| format!("'{s}' is not an export format: use json, toml or markdown"))
}

/// `tutti ensembles …`.
#[derive(Subcommand, Clone, Debug)]
pub enum EnsemblesCmd {
    /// List your ensembles (admins: all).
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one ensemble (id or slug).
    Show {
        /// Ensemble id or slug.
        ensemble: String,
    },
    /// Create an ensemble (admins and performers); you become its owner.
    Create {
        /// URL-safe slug, [a-z0-9_-]{1,64}, unique.
        #[arg(long)]
        slug: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

/// `tutti members …`.
#[derive(Subcommand, Clone, Debug)]
pub enum MembersCmd {
    /// List an ensemble's members.
    List {
        /// Ensemble id or slug.
        ensemble: String,
    },
    /// Add a user to an ensemble (owners and admins).
    Add {
        /// Ensemble id or slug.
        ensemble: String,
        /// User id or user name.
        user: String,
        /// Their role in the ensemble.
        #[arg(long, value_enum)]
        role: MemberRole,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Remove a member (owners and admins; anyone may remove themselves).
    Remove {
        /// Ensemble id or slug.
        ensemble: String,
        /// User id or the member's user name.
        user: String,
    },
    /// Change a member's role (removes and adds them back; not your own).
    Role {
        /// Ensemble id or slug.
        ensemble: String,
        /// User id or the member's user name.
        user: String,
        /// The new role.
        #[arg(value_enum)]
        role: MemberRole,
    },
}

/// `tutti users …`.
#[derive(Subcommand, Clone, Debug)]
pub enum UsersCmd {
    /// List the users.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one user (id or user name).
    Show {
        /// User id or user name.
        user: String,
    },
}

/// `tutti webhooks …`.
#[derive(Subcommand, Clone, Debug)]
pub enum WebhooksCmd {
    /// List an ensemble's webhooks (owners and performers).
    List {
        /// Ensemble id or slug.
        ensemble: String,
    },
    /// Subscribe a URL to an ensemble's events; prints the signing secret once.
    Create {
        /// Ensemble id or slug.
        ensemble: String,
        /// Where deliveries are POSTed, e.g. http://192.168.1.30:9000/tutti.
        #[arg(long)]
        url: String,
        /// An event kind to deliver (repeatable; default: every kind).
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Delete a webhook and its delivery log.
    Delete {
        /// Webhook id.
        webhook: i64,
    },
}

/// `tutti login`.
pub async fn login(opts: &ClientOpts, args: &LoginArgs) -> Result<(), ClientError> {
    let mut api = opts.api()?;
    account::login(
        &mut api,
        args.username.as_deref(),
        args.password_stdin,
        opts.json,
    )
    .await
}

/// `tutti logout`.
pub async fn logout(opts: &ClientOpts) -> Result<(), ClientError> {
    account::logout(&mut opts.api()?).await
}

/// `tutti pieces …`.
pub async fn pieces(opts: &ClientOpts, cmd: &PiecesCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        PiecesCmd::List { ensemble, page } => {
            pieces::list(api, *ensemble, &page.page(), json).await
        }
        PiecesCmd::Show { piece } => pieces::show(api, piece, json).await,
        PiecesCmd::Create {
            ensemble,
            slug,
            title,
            idempotency_key,
        } => {
            pieces::create(
                api,
                *ensemble,
                slug,
                title,
                idempotency_key.as_deref(),
                json,
            )
            .await
        }
        PiecesCmd::Transition { piece, to } => {
            pieces::transition(api, piece, &name(to), json).await
        }
    }
}

/// `tutti specs …`.
pub async fn specs(opts: &ClientOpts, cmd: &SpecsCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        SpecsCmd::List { piece, page } => specs::list(api, piece, &page.page(), json).await,
        SpecsCmd::Show { piece, version } => specs::show(api, piece, *version, json).await,
        SpecsCmd::Draft {
            piece,
            file,
            note,
            idempotency_key,
        } => {
            specs::draft(
                api,
                piece,
                file,
                note.as_deref(),
                idempotency_key.as_deref(),
                json,
            )
            .await
        }
        SpecsCmd::Publish { piece, version } => specs::publish(api, piece, *version, json).await,
    }
}

/// `tutti shows …`.
pub async fn shows(opts: &ClientOpts, cmd: &ShowsCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        ShowsCmd::List { piece, page } => {
            shows::list(api, piece.as_deref(), &page.page(), json).await
        }
        ShowsCmd::Show { show } => shows::show(api, *show, json).await,
        ShowsCmd::Create {
            piece,
            kind,
            spec_version,
            idempotency_key,
        } => {
            shows::create(
                api,
                piece,
                &name(kind),
                *spec_version,
                idempotency_key.as_deref(),
                json,
            )
            .await
        }
        ShowsCmd::Transition { show, to } => shows::transition(api, *show, &name(to), json).await,
    }
}

/// `tutti export …`.
pub async fn export(opts: &ClientOpts, cmd: &ExportCmd) -> Result<(), ClientError> {
    let api = &mut opts.api()?;
    match cmd {
        ExportCmd::Spec {
            piece,
            version,
            format,
            out,
        } => export::spec(api, piece, *version, *format, out.as_deref()).await,
        ExportCmd::Show { show, out } => export::show(api, *show, out.as_deref()).await,
    }
}

/// `tutti ensembles …`.
pub async fn ensembles(opts: &ClientOpts, cmd: &EnsemblesCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        EnsemblesCmd::List { page } => ensembles::list(api, &page.page(), json).await,
        EnsemblesCmd::Show { ensemble } => ensembles::show(api, ensemble, json).await,
        EnsemblesCmd::Create {
            slug,
            name,
            idempotency_key,
        } => ensembles::create(api, slug, name, idempotency_key.as_deref(), json).await,
    }
}

/// `tutti members …`.
pub async fn members(opts: &ClientOpts, cmd: &MembersCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        MembersCmd::List { ensemble } => members::list(api, ensemble, json).await,
        MembersCmd::Add {
            ensemble,
            user,
            role,
            idempotency_key,
        } => {
            members::add(
                api,
                ensemble,
                user,
                &name(role),
                idempotency_key.as_deref(),
                json,
            )
            .await
        }
        MembersCmd::Remove { ensemble, user } => members::remove(api, ensemble, user).await,
        MembersCmd::Role {
            ensemble,
            user,
            role,
        } => members::role(api, ensemble, user, &name(role), json).await,
    }
}

/// `tutti users …`.
pub async fn users(opts: &ClientOpts, cmd: &UsersCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        UsersCmd::List { page } => users::list(api, &page.page(), json).await,
        UsersCmd::Show { user } => users::show(api, user, json).await,
    }
}

/// `tutti webhooks …`.
pub async fn webhooks(opts: &ClientOpts, cmd: &WebhooksCmd) -> Result<(), ClientError> {
    let (api, json) = (&mut opts.api()?, opts.json);
    match cmd {
        WebhooksCmd::List { ensemble } => webhooks::list(api, ensemble, json).await,
        WebhooksCmd::Create {
            ensemble,
            url,
            kinds,
            idempotency_key,
        } => webhooks::create(api, ensemble, url, kinds, idempotency_key.as_deref(), json).await,
        WebhooksCmd::Delete { webhook } => webhooks::delete(api, *webhook).await,
    }
}
