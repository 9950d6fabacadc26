//! Sessions kept compactly: a fixed-size record per session, its text
//! (subscriber, session id, option-82 values) in one arena with repeated
//! values stored once, its prefixes in one pool.
//!
//! A million sessions as [`Session`]s cost a few hundred bytes each (four
//! or five heap strings and a vector, each its own allocation); here they
//! cost the record (56 bytes), the prefix (32) and the text's bytes. The
//! [`Index`](super::Index) keeps its sessions here and hands out
//! [`Session`]s only for the rows a report prints.

use super::{Origin, Session, Source, SubscriberKind};
use crate::prefix::Prefix;
use std::hash::{BuildHasher, RandomState};

/// No string (an absent option-82 value, or no NAS part in an id).
pub(crate) const NONE: u32 = u32::MAX;
/// As a record's `id_scope`: the id is the lease's prefix, then a space
/// and the text `id` names if that is not empty (a DHCP lease's address
/// and host name, not stored twice).
pub(crate) const LEASE_ID: u32 = u32::MAX - 1;

/// Open-addressing hash set of `u32` handles whose keys live elsewhere (in
/// an arena, a record): 4 bytes a slot, where a `HashMap<String, u32>`
/// costs an allocation and some 40 bytes an entry. The caller hashes and
/// compares; growing asks it to hash each handle again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    slots: Vec<u32>,
    len: usize,
}

impl Slots {
    /// The handle whose key `eq` accepts, probing from `hash`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let m = self.slots.len() - 1;
        let mut i = hash as usize & m;
        loop {
            let v = self.slots[i];
            if v == NONE {
                return None;
            }
            if eq(v) {
                return Some(v);
            }
            i = (i + 1) & m;
        }
    }

    /// Adds `v` (not present) under `hash`; `rehash` gives the hash of a
    /// handle already in the set, for growing.
    pub(crate) fn insert(&mut self, hash: u64, v: u32, rehash: impl Fn(u32) -> u64) {
        // At most half full: probes stay short.
        if (self.len + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(16);
            let old = std::mem::replace(&mut self.slots, vec![NONE; size]);
            for h in old.into_iter().filter(|&h| h != NONE) {
                self.place(rehash(h), h);
            }
        }
        self.place(hash, v);
        self.len += 1;
    }

    /// Replaces the handle `eq` accepts by `v` (same key), or adds `v`.
    pub(crate) fn replace(&mut self, hash: u64, v: u32, mut eq: impl FnMut(u32) -> bool, rehash: impl Fn(u32) -> u64) {
        if !self.slots.is_empty() {
            let m = self.slots.len() - 1;
            let mut i = hash as usize & m;
            while self.slots[i] != NONE {
                if eq(self.slots[i]) {
                    self.slots[i] = v;
                    return;
                }
                i = (i + 1) & m;
            }
        }
        self.insert(hash, v, rehash);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * 4
    }

    fn place(&mut self, hash: u64, v: u32) {
        let m = self.slots.len() - 1;
        let mut i = hash as usize & m;
        while self.slots[i] != NONE {
            i = (i + 1) & m;
        }
        self.slots[i] = v;
    }
}

/// Strings in one buffer, each stored once: `id` gives the text back.
/// Hashed with a keyed hasher, since the text (user names) comes from
/// outside and a chosen set of colliding names must not make loading
/// quadratic.
#[derive(Debug, Clone, Default)]
pub(crate) struct Strings {
    text: String,
    /// Where string `i` starts; it ends where `i + 1` starts (or at the end).
    starts: Vec<u64>,
    set: Slots,
    hasher: RandomState,
}

impl Strings {
    pub(crate) fn get(&self, id: u32) -> &str {
        let i = id as usize;
        let (Some(&a), b) = (self.starts.get(i), self.starts.get(i + 1).copied()) else { return "" };
        let b = b.unwrap_or(self.text.len() as u64);
        // Starts are char boundaries (whole strings were appended).
        self.text.get(a as usize..b as usize).unwrap_or("")
    }

    /// The id of `s`, stored if new; `None` past `u32` ids (some four
    /// billion distinct strings, beyond what memory holds).
    pub(crate) fn intern(&mut self, s: &str) -> Option<u32> {
        let h = self.hasher.hash_one(s);
        if let Some(id) = self.set.find(h, |id| self.get(id) == s) {
            return Some(id);
        }
        let id = u32::try_from(self.starts.len()).ok().filter(|&id| id < LEASE_ID)?;
        self.starts.push(self.text.len() as u64);
        self.text.push_str(s);
        let Strings { text, starts, set, hasher } = self;
        set.insert(h, id, |id| {
            let i = id as usize;
            let b = starts.get(i + 1).map_or(text.len(), |&b| b as usize);
            hasher.hash_one(text.get(starts[i] as usize..b).unwrap_or(""))
        });
        Some(id)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.text.capacity() + self.starts.capacity() * 8
    }
}

/// One session, fixed size; text by string id, prefixes by their place in
/// the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rec {
    pub start_ms: u64,
    /// `u64::MAX`: open.
    pub end_ms: u64,
    pub origin: Origin,
    pub subscriber: u32,
    /// The NAS an Acct-Session-Id is from ([`NONE`] or empty: the id alone).
    pub id_scope: u32,
    pub id: u32,
    pub remote_id: u32,
    pub circuit_id: u32,
    pub prefixes: u32,
    pub nprefixes: u16,
    pub source: Source,
    pub kind: SubscriberKind,
}

/// The sessions an [`Index`](super::Index) is built from.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub(crate) recs: Vec<Rec>,
    pub(crate) strings: Strings,
    pub(crate) prefixes: Vec<Prefix>,
}

impl Store {
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Adds `s`; `false` (nothing added) past `u32` sessions or strings.
    pub fn push(&mut self, s: &Session) -> bool {
        self.push_parts(
            s.source,
            s.kind,
            &s.subscriber,
            None,
            &s.id,
            s.remote_id.as_deref(),
            s.circuit_id.as_deref(),
            &s.prefixes,
            s.start_ms,
            s.end_ms.unwrap_or(u64::MAX),
            s.origin,
        )
        .is_some()
    }

    /// Adds a session from its parts; its number.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_parts(
        &mut self,
        source: Source,
        kind: SubscriberKind,
        subscriber: &str,
        id_scope: Option<&str>,
        id: &str,
        remote_id: Option<&str>,
        circuit_id: Option<&str>,
        prefixes: &[Prefix],
        start_ms: u64,
        end_ms: u64,
        origin: Origin,
    ) -> Option<u32> {
        let scope = id_scope.map_or(Some(NONE), |v| self.strings.intern(v))?;
        let id = self.strings.intern(id)?;
        self.push_ids(source, kind, subscriber, scope, id, remote_id, circuit_id, prefixes, start_ms, end_ms, origin)
    }

    /// Adds a session whose NAS and id are stored already (`id_scope`,
    /// `id`); its number.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_ids(
        &mut self,
        source: Source,
        kind: SubscriberKind,
        subscriber: &str,
        id_scope: u32,
        id: u32,
        remote_id: Option<&str>,
        circuit_id: Option<&str>,
        prefixes: &[Prefix],
        start_ms: u64,
        end_ms: u64,
        origin: Origin,
    ) -> Option<u32> {
        let n = u32::try_from(self.recs.len()).ok().filter(|&n| n != NONE)?;
        let opt = |st: &mut Strings, v: Option<&str>| v.map_or(Some(NONE), |v| st.intern(v));
        let rec = Rec {
            start_ms,
            end_ms,
            origin,
            subscriber: self.strings.intern(subscriber)?,
            id_scope,
            id,
            remote_id: opt(&mut self.strings, remote_id)?,
            circuit_id: opt(&mut self.strings, circuit_id)?,
            prefixes: u32::try_from(self.prefixes.len()).ok()?,
            nprefixes: u16::try_from(prefixes.len()).ok()?,
            source,
            kind,
        };
        self.prefixes.extend_from_slice(prefixes);
        self.recs.push(rec);
        Some(n)
    }

    /// Adds prefixes to session `i`: in place if its run ends the pool,
    /// else the run moves to the end (the old place is left unused; this
    /// is rare, a session's later records seldom add addresses). `false`
    /// past what a run holds.
    pub(crate) fn append_prefixes(&mut self, i: u32, more: &[Prefix]) -> bool {
        let r = self.recs[i as usize];
        let (a, n) = (r.prefixes as usize, r.nprefixes as usize);
        let Some(total) = u16::try_from(n + more.len()).ok() else { return false };
        if a + n != self.prefixes.len() {
            let Ok(start) = u32::try_from(self.prefixes.len()) else { return false };
            self.prefixes.extend_from_within(a..a + n);
            self.recs[i as usize].prefixes = start;
        }
        self.prefixes.extend_from_slice(more);
        self.recs[i as usize].nprefixes = total;
        true
    }

    pub(crate) fn prefixes_of(&self, r: &Rec) -> &[Prefix] {
        let a = r.prefixes as usize;
        self.prefixes.get(a..a + r.nprefixes as usize).unwrap_or(&[])
    }

    fn opt(&self, id: u32) -> Option<String> {
        (id != NONE).then(|| self.strings.get(id).to_owned())
    }

    /// Session `i` as a [`Session`].
    pub fn get(&self, i: u32) -> Option<Session> {
        let r = self.recs.get(i as usize)?;
        let id = self.strings.get(r.id);
        let id = match r.id_scope {
            NONE => id.to_owned(),
            LEASE_ID => {
                let p = self.prefixes_of(r).first().map(ToString::to_string).unwrap_or_default();
                if id.is_empty() {
                    p
                } else {
                    format!("{p} {id}")
                }
            }
            scope if self.strings.get(scope).is_empty() => id.to_owned(),
            scope => format!("{}/{id}", self.strings.get(scope)),
        };
        Some(Session {
            source: r.source,
            subscriber: self.strings.get(r.subscriber).to_owned(),
            kind: r.kind,
            id,
            remote_id: self.opt(r.remote_id),
            circuit_id: self.opt(r.circuit_id),
            prefixes: self.prefixes_of(r).to_vec(),
            start_ms: r.start_ms,
            end_ms: (r.end_ms != u64::MAX).then_some(r.end_ms),
            origin: r.origin,
        })
    }

    /// Keeps the sessions `order` names, in that order (each named at most
    /// once), moving them in place: no second copy of the records.
    pub(crate) fn keep_in_order(&mut self, mut order: Vec<u32>) {
        let kept = order.len();
        // The whole permutation: the kept ones, then the rest.
        let mut named = vec![false; self.recs.len()];
        for &i in &order {
            named[i as usize] = true;
        }
        order.extend((0..self.recs.len() as u32).filter(|&i| !named[i as usize]));
        drop(named);
        // new[k] = old[order[k]], one cycle at a time; order[k] = k marks
        // a place done.
        for k in 0..order.len() {
            if order[k] as usize == k {
                continue;
            }
            let tmp = self.recs[k];
            let mut at = k;
            loop {
                let from = order[at] as usize;
                order[at] = at as u32;
                if from == k {
                    self.recs[at] = tmp;
                    break;
                }
                self.recs[at] = self.recs[from];
                at = from;
            }
        }
        self.recs.truncate(kept);
    }

    /// Adds `other`'s sessions after these.
    pub fn append(&mut self, other: Store) {
        if self.recs.is_empty() {
            *self = other;
            return;
        }
        for s in other.iter() {
            self.push(&s);
        }
    }

    /// Every session, in order.
    pub fn iter(&self) -> impl Iterator<Item = Session> + '_ {
        (0..self.recs.len() as u32).filter_map(|i| self.get(i))
    }

    /// Memory held, bytes (capacities, not lengths).
    pub fn bytes(&self) -> usize {
        self.recs.capacity() * std::mem::size_of::<Rec>()
            + self.prefixes.capacity() * std::mem::size_of::<Prefix>()
            + self.strings.bytes()
    }

    /// Gives back the room reserved for growth (vectors double) and the
    /// table that found repeated strings: done adding.
    pub fn shrink(&mut self) {
        self.strings.set = Slots::default();
        self.recs.shrink_to_fit();
        self.prefixes.shrink_to_fit();
        self.strings.text.shrink_to_fit();
        self.strings.starts.shrink_to_fit();
    }
}

impl From<Vec<Session>> for Store {
    fn from(sessions: Vec<Session>) -> Store {
        let mut st = Store::default();
        for s in &sessions {
            st.push(s);
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_stored_once_and_given_back() {
        let mut s = Strings::default();
        let ids: Vec<u32> = (0..1000).map(|i| s.intern(&format!("user{}", i % 300)).unwrap()).collect();
        assert_eq!(s.starts.len(), 300);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.get(*id), format!("user{}", i % 300));
        }
        let e = s.intern("").unwrap();
        assert_eq!(s.get(e), "");
        assert_eq!(s.intern("é…"), s.intern("é…"));
        let id = s.intern("é…").unwrap();
        assert_eq!(s.get(id), "é…");
    }

    #[test]
    fn sessions_round_trip() {
        let a = Session {
            source: Source::Radius,
            subscriber: "alice".into(),
            kind: SubscriberKind::UserName,
            id: "192.0.2.1/s1".into(),
            remote_id: Some("rid".into()),
            circuit_id: None,
            prefixes: vec!["100.64.0.1".parse().unwrap(), "2001:db8::/56".parse().unwrap()],
            start_ms: 5,
            end_ms: None,
            origin: Origin { file: 1, line: 7 },
        };
        let b = Session { subscriber: "bob".into(), end_ms: Some(9), prefixes: vec![], ..a.clone() };
        let c = Session { subscriber: "carol".into(), id: "s3".into(), ..a.clone() };
        let mut st = Store::from(vec![a.clone(), b.clone()]);
        assert_eq!(st.iter().collect::<Vec<_>>(), [a.clone(), b.clone()]);
        assert_eq!(st.get(2), None);
        st.append(Store::from(vec![c.clone()]));
        st.keep_in_order(vec![2, 0]);
        assert_eq!(st.iter().collect::<Vec<_>>(), [c, a]);
    }
}
