//! `docket keys rotate [--access]`: hand signing of the event log (or of the access chain)
//! over to a fresh key.

use std::process::ExitCode;

use clap::Subcommand;

use super::fail;
use crate::access::chain::AccessChain;
use crate::config::Settings;
use crate::store::EventLog;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate the next signing key and append a rotation event signed by the current one.
    Rotate {
        /// Rotate the access chain's key instead of the event log's.
        #[arg(long)]
        access: bool,
    },
}

pub async fn run(settings: &Settings, command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Rotate { access } => {
            let options = settings.log_options();
            let rotated = if access {
                match AccessChain::open(&options).await {
                    Ok(chain) => chain.log().rotate_key().await,
                    Err(error) => return fail(error),
                }
            } else {
                match EventLog::open(&options).await {
                    Ok(log) => log.rotate_key().await,
                    Err(error) => return fail(error),
                }
            };
            match rotated {
                Ok(rotation) => {
                    println!(
                        "{} signing key rotated at position {}: {} -> {}",
                        if access { "access chain" } else { "event log" },
                        rotation.position,
                        rotation.previous_key_id,
                        rotation.next_key_id
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error.public_message()),
            }
        }
    }
}
