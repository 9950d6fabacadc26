//! Group commit, the pattern of every durable writer in port25 (the
//! spool's committer, the outbound journal, the SpamPots capture log): one
//! thread blocks for the first request, takes every request already
//! waiting behind it, writes them all and pays one fsync for the group.
//! Under load many requests share each fsync; alone, a request waits for
//! no one.
//!
//! [`private::private_file`]: the 0600 files of the SQLite stores.

pub mod private;

use std::sync::mpsc::Receiver;

/// The groups of requests from `rx`, each the first one to arrive and
/// those already waiting behind it, `max` at the most (a bound on one
/// group's write and on its first request's wait). Ends once every sender
/// is gone and nothing is left.
pub fn groups<T>(rx: &Receiver<T>, max: usize) -> impl Iterator<Item = Vec<T>> + '_ {
    std::iter::from_fn(move || {
        let mut group = vec![rx.recv().ok()?];
        while group.len() < max {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        Some(group)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_what_waits_up_to_the_bound_and_the_groups_end_with_the_senders() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let mut g = groups(&rx, 2);
        assert_eq!(g.next(), Some(vec![0, 1]));
        assert_eq!(g.next(), Some(vec![2, 3]));
        assert_eq!(g.next(), Some(vec![4]));
        tx.send(5).unwrap();
        assert_eq!(g.next(), Some(vec![5]));
        drop(tx);
        assert_eq!(g.next(), None);
    }
}
