//! `reportd user add | list | passwd | remove | token`: console and API accounts. Passwords
//! are asked for without echo (twice), or read from stdin with `--password-stdin`.

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::json;
use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;
use std::time::Duration;

use super::{audit, open_store, print_json, table};
use crate::accounts::Accounts;
use crate::cli::UserCommand;
use crate::config::Settings;
use crate::model::role::Role;

/// Runs a `user` subcommand.
///
/// # Errors
/// Store errors, an unknown user, a bad name or password.
pub async fn dispatch(settings: &Settings, command: UserCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let accounts = Accounts::new(
        store.clone(),
        Duration::from_secs(settings.security.session_ttl),
    );
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            crate::model::role::check_user_name(&name)?;
            if store.user(&name).await?.is_some() {
                bail!("user {name} already exists (use `reportd user passwd {name}`)");
            }
            let password = read_password(password_stdin)?;
            accounts.add_user(&name, role, &password).await?;
            audit(
                &store,
                "user.add",
                &format!("user {name}"),
                Some(json!({ "role": role.as_str() })),
            )
            .await;
            println!("added user {name} ({role})");
        }
        UserCommand::List { json } => list(&store, json).await?,
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            if store.user(&name).await?.is_none() {
                bail!("no user {name:?} (see `reportd user list`)");
            }
            let password = read_password(password_stdin)?;
            accounts.set_password(&name, &password).await?;
            audit(&store, "user.passwd", &format!("user {name}"), None).await;
            println!("password of {name} changed; their logins and API token have ended");
        }
        UserCommand::Remove { name } => {
            if !store.remove_user(&name).await? {
                bail!("no user {name:?} (see `reportd user list`)");
            }
            audit(&store, "user.remove", &format!("user {name}"), None).await;
            println!("removed user {name}");
        }
        UserCommand::Token { name } => {
            let token = accounts.new_api_token(&name).await?;
            audit(&store, "user.token", &format!("user {name}"), None).await;
            eprintln!("new API token for {name} (shown once; the previous one no longer works):");
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Listed {
    name: String,
    role: Role,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

async fn list(store: &crate::store::Store, json: bool) -> anyhow::Result<()> {
    let users: Vec<Listed> = store
        .users()
        .await?
        .into_iter()
        .map(|u| Listed {
            name: u.name,
            role: u.role,
            created_at: u.created_at,
            updated_at: u.updated_at,
        })
        .collect();
    if json {
        return print_json(&users);
    }
    if users.is_empty() {
        println!("no users yet (add one with `reportd user add NAME --role admin`)");
        return Ok(());
    }
    let mut t = table(&["NAME", "ROLE", "CREATED", "UPDATED"]);
    for u in &users {
        t.add_row(vec![
            u.name.clone(),
            u.role.to_string(),
            u.created_at.format("%Y-%m-%d %H:%M").to_string(),
            u.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The new password: the first line of stdin, or asked twice on the terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        crate::accounts::password::check_new(&password)?;
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    crate::accounts::password::check_new(&first)?;
    let again = rpassword::prompt_password("Again: ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}
