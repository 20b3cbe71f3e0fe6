//! `tutti login` and `tutti logout`: the prompts (the password without echo, through
//! `stty`, never an unsafe terminal call), the sign-in, and the revocation.
//!
//! Must never: print or store a password, or print a token (`--json` shows the answer
//! without them).

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{json, Value};

use crate::error::ClientError;
use crate::http;
use crate::output::{print, print_json};
use crate::session::{self, Api};

fn read_secret_line(prompt: &str) -> Result<String, ClientError> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // Turn echo off with stty(1) while the password is typed (no unsafe terminal calls).
    let echo_off = tty
        && std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    read.map_err(|e| ClientError::Io(format!("stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `tutti login`: signs in as `username` (asked for when `None`) with the password from
/// the first line of stdin (`password_stdin`), else `TUTTI_PASSWORD`, else asked for
/// without echo; stores the tokens and makes this server the default.
pub async fn login(
    api: &mut Api,
    username: Option<&str>,
    password_stdin: bool,
    json: bool,
) -> Result<(), ClientError> {
    let username = match username {
        Some(u) => u.to_string(),
        None if password_stdin => {
            return Err(ClientError::Usage(
                "--password-stdin needs --username".to_string(),
            ))
        }
        None => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| ClientError::Io(format!("stdin: {e}")))?;
            line.trim().to_string()
        }
    };
    if username.is_empty() {
        return Err(ClientError::Usage("the user name is empty".to_string()));
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Io(format!("stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if let Ok(p) = std::env::var("TUTTI_PASSWORD") {
        p
    } else {
        read_secret_line("Password: ")?
    };
    if password.is_empty() {
        return Err(ClientError::Usage("the password is empty".to_string()));
    }
    let body = json!({ "username": username, "password": password, "mode": "token" });
    let reply = http::request(
        &api.server,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&body),
        None,
    )
    .await?;
    let v = http::check(reply, &api.server)?;
    let login = session::login_from_tokens(&username, &v, &api.server)?;
    api.remember(login)?;
    if json {
        let mut shown = v.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("access_token");
            o.remove("refresh_token");
        }
        return print_json(&shown);
    }
    let role = v
        .pointer("/user/role")
        .and_then(Value::as_str)
        .unwrap_or("?");
    print(&format!(
        "logged in to {} as {username} ({role}); tokens stored in {}\n",
        api.server.as_string(),
        api.store().path().display()
    ))
}

/// `tutti logout`: revoke on the server (best effort) and forget the tokens.
pub async fn logout(api: &mut Api) -> Result<(), ClientError> {
    let Some(login) = api.login().cloned() else {
        print(&format!("not logged in to {}\n", api.server.as_string()))?;
        return Ok(());
    };
    let revoked = http::request(
        &api.server,
        "POST",
        "/api/v1/auth/logout",
        Some(&login.access_token),
        None,
        None,
    )
    .await
    .and_then(|r| http::check(r, &api.server));
    api.forget()?;
    match revoked {
        Ok(_) => print(&format!("logged out of {}\n", api.server.as_string())),
        Err(e) => {
            eprintln!(
                "tutti logout: the server did not confirm ({e}); the local tokens are deleted"
            );
            Ok(())
        }
    }
}
