//! Port 25 during the migration (`legacy_submission = true` on an MX
//! listener): transport for everyone, exactly as the MX, and, for clients
//! that log in (after STARTTLS), the submission policy, with every use
//! recorded per login (event `port25.submission.legacy` and the usage table
//! behind `port25 migration report`). With the switch off the MX answers
//! AUTH with a reply that points to port 587.

use crate::{Submission, SubmissionPolicy};
use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::command::MailParams;
use port25_engine::sasl::Credentials;
use port25_engine::{AuthOffer, Decision, Envelope, Hooks, Message, SessionInfo};
use port25_mx::MxPolicy;
use std::sync::Arc;

pub struct LegacyMx {
    mx: Arc<MxPolicy>,
    submission: SubmissionPolicy,
}

impl LegacyMx {
    pub fn new(mx: Arc<MxPolicy>, shared: Arc<Submission>) -> LegacyMx {
        let mut submission = SubmissionPolicy::new(shared, false);
        submission.legacy = true;
        LegacyMx { mx, submission }
    }
}

impl Hooks for LegacyMx {
    fn auth_offer(&self, _info: &SessionInfo) -> AuthOffer {
        AuthOffer::AfterTls
    }

    async fn authenticate(&self, info: &SessionInfo, credentials: &Credentials) -> Decision {
        self.submission.authenticate(info, credentials).await
    }

    fn mail(&self, info: &SessionInfo, from: &ReversePath, params: &MailParams) -> Decision {
        match info.auth {
            Some(_) => self.submission.mail(info, from, params),
            None => self.mx.mail(info, from, params),
        }
    }

    async fn rcpt(&self, info: &SessionInfo, envelope: &Envelope, to: &ForwardPath) -> Decision {
        match info.auth {
            Some(_) => self.submission.rcpt(info, envelope, to).await,
            None => self.mx.rcpt(info, envelope, to).await,
        }
    }

    async fn data(&self, info: &SessionInfo, envelope: &Envelope, message: Message) -> Decision {
        match info.auth {
            Some(_) => self.submission.data(info, envelope, message).await,
            None => self.mx.data(info, envelope, message).await,
        }
    }

    fn reset(&self, info: &SessionInfo) {
        self.submission.reset(info);
    }

    fn closed(&self, info: &SessionInfo) {
        self.submission.closed(info);
    }
}
