//! The access network's side of Port 25 Management.
//!
//! A provider's access network (residential, dynamic, mobile space) blocks
//! outbound TCP/25 so infected machines cannot deliver spam directly, while
//! submission (587/465) and the web stay open and the provider's MTAs and
//! business customers stay free. This crate:
//!
//! - reads the policy file ([`policy`]), with errors that name file and line;
//! - flattens it to longest-prefix-match ranges ([`table`], [`prefix`]) so
//!   every firewall gets minimal, disjoint, deterministic sets;
//! - compiles it to nftables (text and `nft -j` JSON), iptables + ipset,
//!   Cisco IOS and Juniper ([`compile`]);
//! - answers "why is this address blocked" and "what does this change do"
//!   ([`check`], [`diff`]);
//! - parses NetFlow v5/v9 and IPFIX ([`flow`], pure, no I/O) and turns flow
//!   records into the list of subscribers still trying port 25 ([`report`]),
//!   with fixed-size state per subscriber ([`window`]): memory follows the
//!   subscribers, never the flows;
//! - names the subscriber behind a flow's address at the flow's time from
//!   RADIUS accounting and DHCP leases ([`attribution`], pure parsers);
//! - reads nfdump's own files ([`flow::nfcapd`]) as a flow source;
//! - plans the staged rollout: per network, who is still on 25 (bot or
//!   unmigrated mail client, with the evidence) and whether it is ready to
//!   enforce ([`plan`]).

pub mod attribution;
pub mod check;
pub mod compile;
pub mod diff;
pub mod flow;
pub mod inbound;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod prefix;
pub mod publish;
pub mod report;
mod rows;
pub mod sender;
pub mod table;
pub mod window;
