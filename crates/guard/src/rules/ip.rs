//! Which IP addresses a URL argument may not reach when `deny_private = true`.
//!
//! Everything that is not ordinary public unicast is refused: loopback, private, link-local,
//! carrier-grade NAT, unspecified, multicast, broadcast, documentation and benchmark ranges, cloud
//! metadata endpoints, and IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4)
//! are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    Documentation,
    /// A cloud instance metadata endpoint (169.254.169.254, fd00:ec2::254, 168.63.129.16, …).
    Metadata,
    /// Teredo and other tunnels whose real endpoint cannot be judged from the address.
    Tunnel,
}

impl NonPublic {
    pub fn as_str(self) -> &'static str {
        match self {
            NonPublic::Loopback => "loopback",
            NonPublic::Private => "private",
            NonPublic::LinkLocal => "link-local",
            NonPublic::SharedCgnat => "shared (carrier-grade NAT)",
            NonPublic::Unspecified => "unspecified",
            NonPublic::Multicast => "multicast",
            NonPublic::Broadcast => "broadcast",
            NonPublic::Reserved => "reserved",
            NonPublic::Documentation => "documentation",
            NonPublic::Metadata => "cloud metadata endpoint",
            NonPublic::Tunnel => "tunnel",
        }
    }
}

/// `None` for a public unicast address; otherwise why it is refused.
pub fn non_public(ip: IpAddr) -> Option<NonPublic> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn non_public_v4(ip: Ipv4Addr) -> Option<NonPublic> {
    const METADATA: [Ipv4Addr; 3] = [
        Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure IMDS, OpenStack
        Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer (a public address)
        Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    ];
    if METADATA.contains(&ip) {
        return Some(NonPublic::Metadata);
    }
    let table: &[([u8; 4], u32, NonPublic)] = &[
        ([0, 0, 0, 0], 8, NonPublic::Unspecified),
        ([10, 0, 0, 0], 8, NonPublic::Private),
        ([100, 64, 0, 0], 10, NonPublic::SharedCgnat),
        ([127, 0, 0, 0], 8, NonPublic::Loopback),
        ([169, 254, 0, 0], 16, NonPublic::LinkLocal),
        ([172, 16, 0, 0], 12, NonPublic::Private),
        ([192, 0, 0, 0], 24, NonPublic::Reserved),
        ([192, 0, 2, 0], 24, NonPublic::Documentation),
        ([192, 88, 99, 0], 24, NonPublic::Reserved),
        ([192, 168, 0, 0], 16, NonPublic::Private),
        ([198, 18, 0, 0], 15, NonPublic::Reserved),
        ([198, 51, 100, 0], 24, NonPublic::Documentation),
        ([203, 0, 113, 0], 24, NonPublic::Documentation),
        ([224, 0, 0, 0], 4, NonPublic::Multicast),
        ([255, 255, 255, 255], 32, NonPublic::Broadcast),
        ([240, 0, 0, 0], 4, NonPublic::Reserved),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn embedded_v4(bits: u128) -> Ipv4Addr {
    // The low 32 bits; truncation is the point.
    Ipv4Addr::from((bits & 0xFFFF_FFFF) as u32)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<NonPublic> {
    let bits = u128::from(ip);
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(NonPublic::Metadata);
    }
    if ip.is_unspecified() {
        return Some(NonPublic::Unspecified);
    }
    if ip.is_loopback() {
        return Some(NonPublic::Loopback);
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (deprecated compatible), 64:ff9b::a.b.c.d (NAT64),
    // ::ffff:0:a.b.c.d (SIIT): judged by the IPv4 address inside.
    let embeds_v4 = bits >> 32 == 0xFFFF
        || bits >> 32 == 0
        || bits >> 32 == 0xFFFF_0000
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
    if embeds_v4 {
        return non_public_v4(embedded_v4(bits));
    }
    // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xFFFF_FFFF) as u32);
        return non_public_v4(v4);
    }
    let table: &[([u16; 8], u32, NonPublic)] = &[
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, NonPublic::Private), // local-use NAT64
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, NonPublic::Reserved),    // discard-only
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, NonPublic::Tunnel),     // Teredo
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, NonPublic::Reserved), // benchmarking
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            NonPublic::Documentation,
        ),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, NonPublic::Documentation),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, NonPublic::Private), // unique local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, NonPublic::LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, NonPublic::Private), // site-local (deprecated)
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, NonPublic::Multicast),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}
