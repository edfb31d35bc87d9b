//! Who may see what. This is the one place that decides: every read path (API, portal,
//! exports, and later TAXII, streams and e-mail) asks it, and for events it produces the
//! [`Visibility`] that the store applies inside its queries, so that a listing cannot return
//! what a reader may not see.
//!
//! The rules, from DESIGN.md and TLP 2.0:
//!
//! - The national center (admins and analysts) sees everything.
//! - An organization's users see the events in their own networks (n6's "inside") up to
//!   TLP:AMBER+STRICT, when the feed's distribution reaches the affected organizations; and
//!   events whose distribution reaches every constituent, up to TLP:GREEN.
//! - A partner center sees events distributed to partners, up to TLP:GREEN.
//! - TLP:RED reaches named recipients only: no organization's users, through this policy.
//! - Reports, rejects and feeds (raw data of every organization) are the center's alone.

use farol_model::Tlp;
use farol_model::incident::{EntryKind, Incident};
use farol_model::indicator::Community;
use farol_model::org::{Distribution, OrgId, Role};
use farol_store::{Grant, User, Visibility};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user: i64,
    pub org: OrgId,
    pub role: Role,
}

impl Viewer {
    pub fn of(user: &User) -> Viewer {
        Viewer { user: user.id, org: user.org, role: user.role }
    }
}

/// What a viewer may want to do, besides reading events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See reports, their raw bytes and rejects, and feed health.
    ReadReports,
    /// Submit a report for a feed.
    Upload,
    /// See an organization, its networks and contacts.
    ReadOrg(OrgId),
    /// Add, change or remove organizations.
    ManageOrgs,
    /// See the other users of an organization.
    ReadUsers(OrgId),
    /// Add or change a user of this organization with this role.
    ManageUser(OrgId, Role),
    /// See the audit log of an organization (`None`: the whole log).
    ReadAudit(Option<OrgId>),
    /// See what notifications are due and the outbox (every organization's contacts).
    ReadNotifications,
    /// Open, change, assign and merge incidents.
    ManageIncidents,
}

/// The highest TLP an organization sees of the events in its own networks.
const OWN_NETWORKS: Tlp = Tlp::AmberStrict;

/// The events a viewer may see.
pub fn events(v: &Viewer) -> Visibility {
    match v.role {
        Role::Admin | Role::Analyst => Visibility::All,
        Role::OrgAdmin | Role::OrgMember => Visibility::Scoped {
            inside: Some((v.org, OWN_NETWORKS)),
            shared: Some((Distribution::Constituents, Tlp::Green)),
        },
        Role::Partner => Visibility::Scoped { inside: None, shared: Some((Distribution::Partners, Tlp::Green)) },
    }
}

/// The events an organization is told about by e-mail: those in its networks that its own users
/// may see there (up to TLP:AMBER+STRICT, distributed to the affected organizations). What is
/// shared with every constituent is not news about its networks and is left out.
pub fn notification(org: OrgId) -> Visibility {
    Visibility::Scoped { inside: Some((org, OWN_NETWORKS)), shared: None }
}

/// Whether a viewer may see (and comment on) an incident: the center every one; an
/// organization's users those that concern their organization, up to TLP:AMBER+STRICT, as
/// for the events in its networks; partners none.
pub fn incident(v: &Viewer, i: &Incident) -> bool {
    match v.role {
        Role::Admin | Role::Analyst => true,
        Role::OrgAdmin | Role::OrgMember => i.orgs.contains(&v.org) && i.tlp <= OWN_NETWORKS,
        Role::Partner => false,
    }
}

/// Whether a viewer who may see an incident sees an entry of its timeline, written by `author`
/// (organization and role; `None`: the command line, run by the center). The center sees every
/// entry; an organization's users the comments and correspondence of the center and of their
/// own organization: other entries may name other organizations, and other organizations'
/// comments are theirs.
pub fn entry(v: &Viewer, kind: EntryKind, author: Option<(OrgId, Role)>) -> bool {
    if v.role.is_center() {
        return true;
    }
    let conversation = matches!(kind, EntryKind::Comment | EntryKind::Correspondence);
    conversation && author.is_none_or(|(org, role)| role.is_center() || org == v.org)
}

/// Whether a viewer may do something.
pub fn may(v: &Viewer, action: Action) -> bool {
    let center = v.role.is_center();
    match action {
        Action::ReadReports | Action::ManageOrgs | Action::ReadNotifications | Action::ManageIncidents => center,
        Action::Upload => center || v.role == Role::Partner,
        Action::ReadOrg(org) => center || v.org == org,
        Action::ReadUsers(org) => center || (v.role == Role::OrgAdmin && v.org == org),
        Action::ManageUser(org, role) => match v.role {
            Role::Admin => true,
            Role::OrgAdmin => org == v.org && matches!(role, Role::OrgAdmin | Role::OrgMember),
            _ => false,
        },
        Action::ReadAudit(org) => match v.role {
            Role::Admin => true,
            Role::OrgAdmin => org == Some(v.org),
            _ => false,
        },
    }
}

/// What statistics a viewer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// Any country, AS, organization or sector, and rankings that name organizations.
    All,
    /// Its organization's figures (from events up to [`OWN_NETWORKS`], as for its events),
    /// beside the aggregates of its sector and of the nation.
    Own(OrgId),
    /// The nation's aggregates and the world in the data.
    Aggregates,
}

/// The center sees all statistics; an organization's users their own organization against its
/// sector and the nation; partners the nation's aggregates. Aggregates never count events above
/// [`AGGREGATES`].
pub fn statistics(v: &Viewer) -> Statistics {
    match v.role {
        Role::Admin | Role::Analyst => Statistics::All,
        Role::OrgAdmin | Role::OrgMember => Statistics::Own(v.org),
        Role::Partner => Statistics::Aggregates,
    }
}

/// The highest TLP of the events that aggregates shown outside the center count: TLP:AMBER+STRICT
/// and RED events stay within their organization and the center even as a number.
pub const AGGREGATES: Tlp = Tlp::Amber;

/// The highest TLP an organization's own statistics count.
pub const OWN_STATISTICS: Tlp = OWN_NETWORKS;

/// A TAXII collection: one audience's share of the indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// What every organization of the constituency may have: distributed to all constituents,
    /// up to TLP:GREEN.
    Constituency,
    /// What partner centers abroad may have: distributed to partners, up to TLP:GREEN.
    Partners,
    /// What a community shares among its members, up to TLP:GREEN.
    Community(i64),
    /// What concerns an organization's own networks, up to TLP:AMBER+STRICT.
    Org(OrgId),
}

/// The highest TLP of indicators shared beyond the organizations they concern: TLP:GREEN is
/// the label for a community; AMBER and above stay with the recipient's organization.
pub const SHARED_INDICATORS: Tlp = Tlp::Green;

impl Collection {
    /// What it holds.
    pub fn grant(self) -> Grant {
        match self {
            Collection::Constituency => Grant::Reach(Distribution::Constituents, SHARED_INDICATORS),
            Collection::Partners => Grant::Reach(Distribution::Partners, SHARED_INDICATORS),
            Collection::Community(c) => Grant::Community(c, SHARED_INDICATORS),
            Collection::Org(o) => Grant::Inside(o, OWN_NETWORKS),
        }
    }

    /// How what is added to it is shared: its distribution, community and organizations.
    pub fn sharing(self) -> (Distribution, Option<i64>, Vec<OrgId>) {
        match self {
            Collection::Constituency => (Distribution::Constituents, None, vec![]),
            Collection::Partners => (Distribution::Partners, None, vec![]),
            Collection::Community(c) => (Distribution::Community, Some(c), vec![]),
            Collection::Org(o) => (Distribution::Affected, None, vec![o]),
        }
    }

    /// Why an indicator of this TLP is not added to it: above what it shares, it would reach
    /// nobody there.
    pub fn refuses(self, tlp: Tlp) -> Option<String> {
        let most = match self.grant() {
            Grant::All => Tlp::Red,
            Grant::Inside(_, t) | Grant::Community(_, t) | Grant::Reach(_, t) => t,
        };
        (tlp > most).then(|| {
            format!(
                "this collection shares up to {}: a {} indicator would reach nobody in it",
                most.label(),
                tlp.label()
            )
        })
    }
}

/// The collections a viewer may read: the center every one; an organization's users the
/// constituency's, their communities' and their own organization's; partners the partners'.
/// `communities` are every community with its members; `orgs` every organization's id.
pub fn collections(v: &Viewer, communities: &[Community], orgs: &[OrgId]) -> Vec<Collection> {
    let all_communities = communities.iter().map(|c| Collection::Community(c.id));
    match v.role {
        Role::Admin | Role::Analyst => [Collection::Constituency, Collection::Partners]
            .into_iter()
            .chain(all_communities)
            .chain(orgs.iter().map(|&o| Collection::Org(o)))
            .collect(),
        Role::OrgAdmin | Role::OrgMember => [Collection::Constituency]
            .into_iter()
            .chain(communities.iter().filter(|c| c.members.contains(&v.org)).map(|c| Collection::Community(c.id)))
            .chain([Collection::Org(v.org)])
            .collect(),
        Role::Partner => vec![Collection::Partners],
    }
}

/// Whether a viewer may add indicators to a collection (that it may read): the center to any;
/// an organization's users to their communities'; partners to the partners'.
pub fn may_write(v: &Viewer, c: Collection) -> bool {
    match c {
        Collection::Constituency | Collection::Org(_) => v.role.is_center(),
        Collection::Community(_) => v.role != Role::Partner,
        Collection::Partners => v.role.is_center() || v.role == Role::Partner,
    }
}

/// The indicators a viewer may read, in any listing or export: those of the collections it may
/// read, and for the center every one.
pub fn indicators(v: &Viewer, communities: &[Community]) -> Vec<Grant> {
    if v.role.is_center() {
        return vec![Grant::All];
    }
    collections(v, communities, &[v.org]).into_iter().map(Collection::grant).collect()
}

/// The organization whose audit log a viewer sees: `None` for the whole log.
pub fn audit_scope(v: &Viewer) -> Option<OrgId> {
    (v.role != Role::Admin).then_some(v.org)
}

#[cfg(test)]
mod tests {
    use farol_model::incident::Severity;
    use farol_model::{ClassificationType, Timestamp};

    use super::*;

    #[test]
    fn an_incident_is_seen_by_the_center_and_the_organizations_it_concerns_up_to_amber_strict() {
        let incident = |orgs: &[i64], tlp: Tlp| Incident {
            orgs: orgs.iter().map(|&o| OrgId(o)).collect(),
            ..Incident::new("t", ClassificationType::Phishing, Severity::Medium, tlp, Timestamp::now())
        };
        let viewer = |org: i64, role: Role| Viewer { user: 1, org: OrgId(org), role };
        let cases = [
            (viewer(1, Role::Analyst), incident(&[2], Tlp::Red), true),
            (viewer(1, Role::Admin), incident(&[], Tlp::Red), true),
            (viewer(2, Role::OrgMember), incident(&[2, 3], Tlp::AmberStrict), true),
            (viewer(2, Role::OrgAdmin), incident(&[2], Tlp::Clear), true),
            (viewer(2, Role::OrgAdmin), incident(&[2], Tlp::Red), false),
            (viewer(4, Role::OrgMember), incident(&[2, 3], Tlp::Clear), false),
            (viewer(2, Role::Partner), incident(&[2], Tlp::Clear), false),
        ];
        for (v, i, expected) in cases {
            assert_eq!(super::incident(&v, &i), expected, "{v:?} {:?} {:?}", i.orgs, i.tlp);
        }
        assert!(!may(&viewer(2, Role::OrgAdmin), Action::ManageIncidents));
        let member = viewer(2, Role::OrgMember);
        assert!(entry(&member, EntryKind::Comment, None));
        assert!(entry(&member, EntryKind::Comment, Some((OrgId(1), Role::Analyst))));
        assert!(entry(&member, EntryKind::Correspondence, Some((OrgId(2), Role::OrgAdmin))));
        assert!(!entry(&member, EntryKind::Comment, Some((OrgId(3), Role::OrgAdmin))), "another organization's");
        assert!(!entry(&member, EntryKind::Change, None), "changes may name other organizations");
        assert!(entry(&viewer(1, Role::Analyst), EntryKind::Change, Some((OrgId(3), Role::OrgAdmin))));
        assert!(may(&viewer(1, Role::Analyst), Action::ManageIncidents));
    }
}
