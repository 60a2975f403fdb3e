package wire

// Schema is what an analyst may ask about in a collaboration: each
// party's tables (uploaded, or declared by the rules and not uploaded
// yet), their columns as queries name them, with their types, roles and
// bounds. Names and types only: nothing about any person or any table's
// size.
type Schema struct {
	// Cohort is true when a current cohort exists: a match completed
	// over tables that are all still current, so questions can run.
	Cohort bool          `json:"cohort"`
	Tables []SchemaTable `json:"tables"`
}

// SchemaTable is one party's table.
type SchemaTable struct {
	PartnerID   string `json:"partner_id"`
	PartnerName string `json:"partner_name"`
	Table       string `json:"table"`
	// Uploaded is false for a table the rules declare that its party has
	// not uploaded yet: its columns then have no type.
	Uploaded bool           `json:"uploaded"`
	Columns  []SchemaColumn `json:"columns"`
}

// SchemaColumn is one column of a table.
type SchemaColumn struct {
	// Name is the column as queries name it (behind its party's prefix);
	// Column as the table names it.
	Name   string `json:"name"`
	Column string `json:"column"`
	// Type is the column's Arrow type as uploaded (utf8, int64, float64,
	// date32, timestamp[us, tz=UTC], ...), as GET .../audiences gives
	// it; empty before an upload.
	Type string `json:"type,omitempty"`
	// Role is what queries may do with it: dimension (group and filter),
	// time (a dimension that is a date or timestamp) or metric (SUM, AVG
	// and the like, within Bounds); empty when the rules allow no use.
	Role   string      `json:"role,omitempty" schema:"enum=dimension|metric|time"`
	Bounds *[2]float64 `json:"bounds,omitempty"`
}
