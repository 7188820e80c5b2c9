//! Answering a review a deploy waits for inside its CI/CD system (a GitHub
//! environment's required reviewers): the answer goes to the backend that
//! follows the deploy, and the audit log records it before it is reported
//! as given — with what the backend said, or why it refused.

use chrono::Utc;

use super::{Engine, EngineError};
use crate::backends::deploy::Review;
use crate::domain::{ActionKind, Outcome, Version};
use crate::store::NewAudit;

impl Engine {
    /// Approve (or reject) the review the deploy of `version` to `env` in
    /// flight in this process waits for, with `note` as the comment the
    /// CI/CD system keeps. Ok with what the backend answered. A refusal
    /// (the token may not review: a 403) is an error, audited as failed.
    pub async fn review(
        &self,
        env: &str,
        version: Option<&Version>,
        approve: bool,
        note: Option<String>,
    ) -> Result<String, EngineError> {
        let idx = self.index(env)?;
        let word = if approve { "approved" } else { "rejected" };
        let note = note
            .map(|n| crate::text::clean(n.trim()))
            .unwrap_or_default();
        let said = if note.is_empty() {
            String::new()
        } else {
            format!(": {note}")
        };
        let started = self
            .inner
            .store
            .audit_start(&NewAudit {
                at: Utc::now(),
                actor: &self.inner.actor,
                action: ActionKind::Review,
                env,
                version,
                from_version: None,
                outcome: Outcome::Started,
                detail: &format!("answering the deploy's review in its CI/CD system: {word}{said}"),
            })
            .await?;
        let answer = Review { approve, note };
        let r = self.inner.envs[idx].strategy.review(&answer).await;
        let (outcome, detail) = match &r {
            Ok(line) => (Outcome::Succeeded, line.clone()),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        self.inner
            .store
            .audit_finish(started, Utc::now(), outcome, &detail)
            .await?;
        Ok(r?)
    }
}
