package audit

// Action names what an entry records. Entry.Action holds it as a plain
// string, which the hash covers: the names below are part of every log
// written so far and must never change.
type Action string

// The actions the server writes.
const (
	ServerInit               Action = "server.init"
	PartnerCreate            Action = "partner.create"
	KeyCreate                Action = "key.create"
	KeyRevoke                Action = "key.revoke"
	PartnerExposureCap       Action = "partner.exposure_cap"
	CollaborationPropose     Action = "collaboration.propose"
	CollaborationApprove     Action = "collaboration.approve"
	CollaborationChangeRules Action = "collaboration.change_rules"
	CollaborationRejectRules Action = "collaboration.reject_rules"
	AudienceUpload           Action = "audience.upload"
	AudienceDelete           Action = "audience.delete"
	MatchStart               Action = "match.start"
	MatchPoints              Action = "match.points"
	MatchComplete            Action = "match.complete"
	MatchRefused             Action = "match.refused"
	QueryRun                 Action = "query.run"
	QueryCached              Action = "query.cached"
	QueryRefused             Action = "query.refused"
	AccessRequest            Action = "access.request"
	DeletionIdentifiers      Action = "deletion.identifiers"
	DeletionOptOut           Action = "deletion.optout"
	DeletionAudience         Action = "deletion.audience"
	DeletionCollaboration    Action = "deletion.collaboration"
	DeletionExpiry           Action = "deletion.expiry"
	PartnerReportSettings    Action = "partner.report_settings"
	// BackupTaken: the operator took a backup (a copy of every partner's
	// data); the operator's own entry, which partners read redacted.
	BackupTaken Action = "backup.taken"
)

// Actions lists every action the server writes, in the order of a
// collaboration's life (setup, rules, data, matching, queries, deletion),
// the order the console offers them in.
func Actions() []Action {
	return []Action{
		ServerInit, PartnerCreate, KeyCreate, KeyRevoke, PartnerExposureCap,
		CollaborationPropose, CollaborationApprove, CollaborationChangeRules, CollaborationRejectRules,
		AudienceUpload, AudienceDelete,
		MatchStart, MatchPoints, MatchComplete, MatchRefused,
		QueryRun, QueryCached, QueryRefused, AccessRequest,
		DeletionIdentifiers, DeletionOptOut, DeletionAudience, DeletionCollaboration, DeletionExpiry,
		PartnerReportSettings, BackupTaken,
	}
}
