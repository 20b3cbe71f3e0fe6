//! A private PostgreSQL server for one test: `initdb` into a fresh temporary directory, the
//! server on a free TCP port of 127.0.0.1 with its unix socket in that directory, one database
//! made for the test; stopped, and the directory deleted, when the handle is dropped (a test
//! that panics stops it too). Never the machine's own PostgreSQL, whether one runs or not.
//!
//! The binaries come from Debian's layout, `/usr/lib/postgresql/<major>/bin` (the newest major
//! there); without them the test fails and says to run `./scripts/deps test`. PostgreSQL refuses
//! to run as root: as root, `initdb`, `pg_ctl` and the server run as the `postgres` system user
//! (through `runuser`), which owns the temporary directory; as anyone else they run directly.
//!
//! `fsync` is off: these tests check the schema and the database's rules, not durability.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postgres::{Client, NoTls};
use tempfile::TempDir;

/// Where Debian installs each major version's binaries.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// The superuser `initdb` makes, and the test's database.
const USER: &str = "tutti";
const DATABASE: &str = "tutti";

/// A running private server; dropping it stops the server and deletes its directory.
pub struct PrivatePostgres {
    bin: PathBuf,
    run_as_postgres: bool,
    port: u16,
    running: bool,
    dir: TempDir,
}

impl PrivatePostgres {
    /// Makes a cluster in a fresh temporary directory, starts it and creates the test's
    /// database. Panics, saying why, when any of that fails.
    pub fn start() -> PrivatePostgres {
        let bin = debian_bin_dir();
        let run_as_postgres = effective_uid() == 0;
        let dir = tempfile::Builder::new()
            .prefix("tutti-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        if run_as_postgres {
            let (uid, gid) = postgres_user();
            chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the temporary directory to the postgres user");
        }
        let mut pg = PrivatePostgres {
            bin,
            run_as_postgres,
            port: 0,
            running: false,
            dir,
        };
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                USER.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        )
        .unwrap_or_else(|why| panic!("initdb failed: {why}"));
        // A port that was free a moment ago may be taken by the time the server binds it:
        // a few fresh tries, then give up saying why.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.pg_ctl_start() {
                Ok(()) => {
                    pg.running = true;
                    let mut admin = pg.connect_to("postgres");
                    admin
                        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                        .expect("create the test's database");
                    return pg;
                }
                Err(why) => last = why,
            }
        }
        panic!("the private PostgreSQL server did not start: {last}");
    }

    /// The test database's connection URL.
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A new connection to the test's database.
    pub fn connect(&self) -> Client {
        let url = self.url();
        Client::connect(&url, NoTls)
            .unwrap_or_else(|e| panic!("connect to the private PostgreSQL at {url}: {e}"))
    }

    fn connect_to(&self, database: &str) -> Client {
        let url = format!("postgresql://{USER}@127.0.0.1:{}/{database}", self.port);
        Client::connect(&url, NoTls)
            .unwrap_or_else(|e| panic!("connect to the private PostgreSQL at {url}: {e}"))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c max_connections=20",
            self.port,
            self.dir.path().display()
        );
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "120".as_ref(),
                "start".as_ref(),
            ],
        )
        .map_err(|why| {
            let log = fs::read_to_string(&log).unwrap_or_default();
            format!("{why}\nserver log:\n{log}")
        })
    }

    /// Runs one of the binaries (as the `postgres` user when we are root), in the temporary
    /// directory; `Err` carries its exit status and output.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args).current_dir(self.dir.path());
        // PG* variables of the environment must not point the tools elsewhere.
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE"] {
            cmd.env_remove(var);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("could not run {}: {e}", path.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&path, &out))
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.data_dir();
        let stopped = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        if let Err(why) = stopped {
            eprintln!("stopping the private PostgreSQL server failed: {why}");
        }
        // The TempDir itself deletes the directory after this.
    }
}

/// The newest `/usr/lib/postgresql/<major>/bin` that has `initdb`, `pg_ctl` and `postgres`.
fn debian_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| bin.join(b).is_file())
                .then_some((major, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not under \
             {DEBIAN_PG_ROOT}/<version>/bin: run `./scripts/deps test` (it installs Debian's \
             `postgresql` package) and run the tests again"
        ),
    }
}

/// The effective uid of this process, from `/proc/self/status`.
fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .expect("the effective uid in /proc/self/status")
}

/// The uid and gid of the `postgres` system user (Debian's package makes it).
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "there is no `postgres` system user to run PostgreSQL as (it refuses to run as \
             root): run `./scripts/deps test` (Debian's `postgresql` package makes the user)"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u"), id("-g"))
}

/// A port of 127.0.0.1 that was free when asked.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

fn describe(path: &Path, out: &Output) -> String {
    format!(
        "{} exited with {}\nstdout:\n{}\nstderr:\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
