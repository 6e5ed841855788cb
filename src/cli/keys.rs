//! `docket keys rotate`: hand signing over to a fresh key.

use std::process::ExitCode;

use clap::Subcommand;

use super::fail;
use crate::config::Settings;
use crate::store::EventLog;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate the next signing key and append a rotation event signed by the current one.
    Rotate,
}

pub async fn run(settings: &Settings, command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Rotate => {
            let log = match EventLog::open(&settings.log_options()).await {
                Ok(log) => log,
                Err(error) => return fail(error),
            };
            match log.rotate_key().await {
                Ok(rotation) => {
                    println!(
                        "signing key rotated at position {}: {} -> {}",
                        rotation.position, rotation.previous_key_id, rotation.next_key_id
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error.public_message()),
            }
        }
    }
}
