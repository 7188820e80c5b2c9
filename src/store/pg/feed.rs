//! The change feed: a session that LISTENs on the change channel and
//! forwards what it hears, reconnecting when it is lost.

use super::*;

/// A session that LISTENs on the change channel.
pub(super) fn listener(target: &PgTarget) -> Result<Client, StoreError> {
    let mut c = target.connect()?;
    c.batch_execute(&format!("LISTEN {}", schema::CHANNEL))
        .map_err(|e| target.lost(&e))?;
    Ok(c)
}

/// How long after hearing of the audit log the feed ticks once more: the
/// server lets one notification stand for the appends in the
/// [`schema::NOTIFY_COALESCE_MS`] after it (schema 9), which commit in
/// turn after it; a read this much later (the window and a margin for
/// their commits) sees them.
pub(super) const TRAILING: Duration = Duration::from_millis(schema::NOTIFY_COALESCE_MS + 500);

/// The payload of the audit log's notifications (its table's name).
const AUDIT_PAYLOAD: &str = "shipdeck_audit";

/// Forward notifications to `notifier` until nobody subscribes; after one
/// from the audit log, tick once more [`TRAILING`] later.
pub(super) fn listen(client: &mut Client, target: &PgTarget, notifier: &ChangeNotifier) {
    const WAKE: Duration = Duration::from_millis(500);
    let mut trailing: Option<Instant> = None;
    loop {
        if notifier.is_closed() {
            return;
        }
        let wait = trailing.map_or(WAKE, |t| {
            t.saturating_duration_since(Instant::now()).min(WAKE)
        });
        let next = {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(wait);
            postgres::fallible_iterator::FallibleIterator::next(&mut it)
        };
        let lost = match next {
            Ok(Some(heard)) => {
                notifier.notify();
                if heard.payload() == AUDIT_PAYLOAD {
                    trailing = Some(Instant::now() + TRAILING);
                }
                None
            }
            Ok(None) => {
                if trailing.is_some_and(|t| Instant::now() >= t) {
                    trailing = None;
                    notifier.notify();
                }
                None
            }
            Err(e) => Some(cause(&e)),
        };
        if lost.is_none() && !client.is_closed() {
            continue;
        }
        tracing::warn!(
            "store {}: the change feed lost its connection ({}); reconnecting",
            target.describe,
            lost.unwrap_or_else(|| "closed".into())
        );
        // Views read again now: they find the store unreachable and say so
        // at once, not at their next refresh (a console polling every few
        // minutes drew its last snapshot as if all were well).
        notifier.notify();
        // And once more when the first attempt to reconnect has failed: a
        // view's read on that first tick may have raced the server's
        // shutdown (its own session was not yet terminated) and found all
        // well, and nothing else would have it read again before its next
        // refresh. By now the server refuses, and the read says so.
        let mut failed_once = false;
        loop {
            if notifier.is_closed() {
                return;
            }
            std::thread::sleep(RECONNECT_PAUSE);
            match listener(target) {
                Ok(c) => {
                    *client = c;
                    notifier.notify();
                    break;
                }
                Err(_) if !std::mem::replace(&mut failed_once, true) => notifier.notify(),
                Err(_) => {}
            }
        }
    }
}
