//! The data directory stops taking writes in the middle of a show: a real ext4 file system
//! on a loop device, filled to the last block (disk full), then switched read-only by the
//! kernel's own error handling (`errors=remount-ro`, as a failing disk does). Each time the
//! API and the performers' stored commands are refused with `storage_unavailable` naming the
//! database file, the audience's inputs keep moving the state (the show goes on from
//! memory), and once space is back writes succeed again.
//!
//! Mounting needs root (as the test command runs on CI and on this project's machines); the
//! test fails, not skips, without it.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::live::{self, Ws};
use support::{http, serve_with, setup_admin};

const TOKEN: &str = "disk-token";

/// An ext4 file system of `mib` MiB in a file, mounted on a loop device with
/// `errors=remount-ro`; unmounted when dropped.
struct Ext4 {
    mount: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (this test mounts a loop device and needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Ext4 {
    fn new(dir: &Path, mib: u64) -> Ext4 {
        let image = dir.join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        // No blocks reserved for root: the server runs as root here and would use them.
        run(Command::new("mkfs.ext4")
            .args(["-q", "-m", "0"])
            .arg(&image));
        let mount = dir.join("mnt");
        std::fs::create_dir(&mount).unwrap();
        run(Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&image)
            .arg(&mount));
        Ext4 { mount }
    }

    /// The loop device's name under /sys/fs/ext4.
    fn device(&self) -> String {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(self.mount.to_str().unwrap()))
            .expect("mounted");
        line.split(' ')
            .next()
            .unwrap()
            .trim_start_matches("/dev/")
            .to_string()
    }

    /// Writes a file until the disk is full; returns it.
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 64 << 10];
        loop {
            match f.write_all(&chunk).and_then(|()| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Whatever a partial chunk left: single bytes until nothing fits.
        while f.write_all(&[7]).and_then(|()| f.sync_all()).is_ok() {}
        path
    }

    /// The kernel's reaction to a file system error: the mount turns read-only.
    fn fail(&self) {
        let knob = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device());
        std::fs::write(&knob, "tutti storage test").unwrap_or_else(|e| panic!("{knob}: {e}"));
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

async fn override_reply(ws: &mut Ws, seq: u64, value: f64) -> Value {
    live::send(
        ws,
        json!({"type": "override", "param": "intensity", "mode": "lock", "value": value, "seq": seq}),
    )
    .await
    .unwrap();
    loop {
        let v = live::next(ws).await.unwrap();
        if (v["type"] == "ack" || v["type"] == "error") && v["seq"] == seq {
            return v;
        }
    }
}

/// The audience still moves the state: a new input is acknowledged and the performers'
/// detailed state shows it as the audience's raw value.
async fn the_show_goes_on(phone: &mut Ws, desk: &mut Ws, seq: u64, value: f64) {
    live::send(
        phone,
        json!({"type": "input", "param": "brightness", "value": value, "seq": seq}),
    )
    .await
    .unwrap();
    let ack = live::expect(phone, "ack")
        .await
        .expect("input acknowledged");
    assert_eq!(ack["seq"], seq);
    for _ in 0..5000 {
        let state = live::expect(desk, "state").await.expect("state");
        if let Some(raw) = state["params"]["brightness"]["raw"].as_f64() {
            if (raw - value).abs() < 0.01 {
                return;
            }
        }
    }
    panic!("5000 states without the audience's input {value}");
}

fn create_ensemble(addr: &str, token: &str, n: u32) -> (u16, Value) {
    http(
        addr,
        "POST",
        "/api/v1/ensembles",
        Some(token),
        Some(
            &json!({"slug": format!("band-{n}"), "name": "A band with a long enough name to fill pages"}),
        ),
    )
}

fn assert_storage_error(v: &Value, problem: &str, db: &Path) {
    let e = &v["error"];
    assert_eq!(e["code"], "storage_unavailable", "{v}");
    assert_eq!(e["details"]["problem"], problem, "{v}");
    assert_eq!(e["details"]["path"], db.display().to_string(), "{v}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&db.display().to_string()),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_then_failing_disk_refuses_writes_and_the_show_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Ext4::new(dir.path(), 32);
    let data = disk.mount.join("data");
    let db = data.join("tutti.db");
    let srv = serve_with(&data, &["--performer-token", TOKEN]);
    let addr = srv.addr.clone();
    let admin = setup_admin(&addr);
    let (mut desk, _) = live::performer(&addr, TOKEN).await;
    let mut phone = live::connect(&addr).await.unwrap();
    live::send(&mut phone, json!({"type": "join"}))
        .await
        .unwrap();
    live::expect(&mut phone, "welcome").await.unwrap();
    assert_eq!(override_reply(&mut desk, 1, 0.25).await["type"], "ack");
    let mut made = 0;
    assert_eq!(create_ensemble(&addr, &admin, made).0, 201);

    // Disk full. SQLite may still fit a few writes into the room its log file already has;
    // within a bounded number of writes the store must say no.
    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..400 {
        made += 1;
        let (st, v) = create_ensemble(&addr, &admin, made);
        if st == 503 {
            refused = Some(v);
            break;
        }
        assert_eq!(st, 201, "{v}");
    }
    let refused = refused.expect("400 writes on a full disk all succeeded");
    assert_storage_error(&refused, "full", &db);
    let reply = override_reply(&mut desk, 2, 0.75).await;
    assert_eq!(reply["code"], "storage_unavailable", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains(&db.display().to_string()),
        "{reply}"
    );
    the_show_goes_on(&mut phone, &mut desk, 1, 0.3).await;
    // Reads still work.
    let (st, v) = http(&addr, "GET", "/api/v1/ensembles", Some(&admin), None);
    assert_eq!(st, 200, "{v}");

    // Space is back: writes succeed again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    made += 1;
    let (st, v) = create_ensemble(&addr, &admin, made);
    assert_eq!(st, 201, "{v}");
    assert_eq!(override_reply(&mut desk, 3, 0.5).await["type"], "ack");
    the_show_goes_on(&mut phone, &mut desk, 2, 0.6).await;

    // The disk fails and the kernel makes the file system read-only.
    disk.fail();
    made += 1;
    let (st, v) = create_ensemble(&addr, &admin, made);
    assert_eq!(st, 503, "{v}");
    assert_storage_error(&v, "read_only", &db);
    let reply = override_reply(&mut desk, 4, 0.9).await;
    assert_eq!(reply["code"], "storage_unavailable", "{reply}");
    the_show_goes_on(&mut phone, &mut desk, 3, 0.1).await;
    let (st, v) = http(&addr, "GET", "/api/v1/ensembles", Some(&admin), None);
    assert_eq!(st, 200, "{v}");
    drop(srv);
}

/// A data directory that is read-only before the start (a show stored there earlier, then
/// the disk failed): `tutti serve` says so, naming the directory, resumes the show from what
/// it can read and runs it from memory, refusing writes with `storage_unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_runs_the_show_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Ext4::new(dir.path(), 16);
    let data = disk.mount.join("data");
    let admin = {
        let srv = serve_with(&data, &["--performer-token", TOKEN]);
        setup_admin(&srv.addr)
    };
    disk.fail();
    let srv = serve_with(&data, &["--performer-token", TOKEN]);
    let line = srv.banner.last().unwrap();
    assert!(
        line.contains(&data.display().to_string()) && line.contains("READ-ONLY"),
        "{line}"
    );
    let addr = srv.addr.clone();
    let (st, v) = create_ensemble(&addr, &admin, 1);
    assert_eq!(st, 503, "{v}");
    assert_storage_error(&v, "read_only", &data.join("tutti.db"));
    let (mut desk, _) = live::performer(&addr, TOKEN).await;
    let reply = override_reply(&mut desk, 1, 0.4).await;
    assert_eq!(reply["code"], "storage_unavailable", "{reply}");
    let mut phone = live::connect(&addr).await.unwrap();
    live::send(&mut phone, json!({"type": "join"}))
        .await
        .unwrap();
    live::expect(&mut phone, "welcome").await.unwrap();
    the_show_goes_on(&mut phone, &mut desk, 1, 0.7).await;
}
