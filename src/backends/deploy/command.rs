//! A deploy command given as argv with `{env}` and `{version}` filled in —
//! never through a shell.

use std::time::Duration;

use crate::backends::BackendError;
use crate::backends::util::{fill, run_command};
use crate::domain::Version;

#[derive(Clone, Debug)]
pub struct CommandDeploy {
    template: Vec<String>,
    pub(super) name: String,
    timeout: Duration,
    pub(super) ready: Option<super::ready::ReadyCheck>,
}

impl CommandDeploy {
    pub(super) fn new(env: &str, cmd: &[String], timeout: Duration) -> Self {
        let template = fill(cmd, &[("env", env)]);
        CommandDeploy {
            name: format!(
                "deploy command of {env} ({})",
                template.first().map(String::as_str).unwrap_or("")
            ),
            template,
            timeout,
            ready: None,
        }
    }

    pub(super) fn with_ready(mut self, ready: Option<super::ready::ReadyCheck>) -> Self {
        self.ready = ready;
        self
    }

    pub(super) async fn start(&self, version: &Version) -> Result<String, BackendError> {
        let argv = fill(&self.template, &[("version", version.as_str())]);
        run_command(&self.name, &argv, self.timeout).await?;
        Ok(format!("{} exited 0", self.name))
    }
}
