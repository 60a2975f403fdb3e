package query

// The JSON tree of json_serialize_sql, read as objects.

// obj is a JSON object of the tree.
type obj map[string]any

func asObj(v any) (obj, bool) {
	switch m := v.(type) {
	case map[string]any:
		return obj(m), true
	case obj:
		return m, true
	}
	return nil, false
}

// exactly reports whether o has exactly these keys.
func (o obj) exactly(keys ...string) bool {
	if len(o) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

func (o obj) str(k string) string {
	s, _ := o[k].(string)
	return s
}

func (o obj) null(k string) bool {
	v, ok := o[k]
	return ok && v == nil
}

func (o obj) isFalse(k string) bool {
	b, ok := o[k].(bool)
	return ok && !b
}

func (o obj) emptyStr(k string) bool {
	s, ok := o[k].(string)
	return ok && s == ""
}

func (o obj) list(k string) ([]any, bool) {
	l, ok := o[k].([]any)
	return l, ok
}

func (o obj) emptyList(k string) bool {
	l, ok := o[k].([]any)
	return ok && len(l) == 0
}
