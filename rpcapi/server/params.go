package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// fieldInfo describes one JSON member of a params struct.
type fieldInfo struct {
	name     string
	required bool // must be present
	nullable bool // null is accepted (pointers and byte slices)
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

// fieldsOf lists the JSON members of struct type t, flattening embedded
// structs as encoding/json does. Members tagged omitempty and pointers are
// optional; everything else is required unless the caller says otherwise.
func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, fieldsOf(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		k := f.Type.Kind()
		out = append(out, fieldInfo{
			name:     name,
			required: !strings.Contains(opts, "omitempty") && k != reflect.Pointer,
			nullable: k == reflect.Pointer || k == reflect.Slice,
		})
	}
	fieldCache.Store(t, out)
	return out
}

// decodeParams decodes raw (a JSON object) into p strictly: unknown
// members, members of the wrong type, null for a member that cannot be
// null, and missing required members (except those in optional) are
// invalid params (-32602, EINVAL). Missing params count as {}.
func decodeParams(raw *json.RawMessage, p any, optional []string) error {
	body := []byte("{}")
	if raw != nil && string(*raw) != "null" {
		body = *raw
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return errParams("params must be a JSON object")
	}
	for _, f := range fieldsOf(reflect.TypeOf(p).Elem()) {
		v, present := members[f.name]
		switch {
		case !present && f.required && !contains(optional, f.name):
			return errParams("missing member %q", f.name)
		case present && !f.nullable && string(bytes.TrimSpace(v)) == "null":
			return errParams("member %q must not be null", f.name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errParams("member %q: JSON %s cannot be %s", te.Field, te.Value, te.Type)
		}
		return errParams("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// decodeParamsAs decodes the params of a call on a mount as decodeParams
// does, and its optional per-call identity, the member "as" (nil if
// absent): {"uid":U,"gid":G,"groups":[...]}, uid and gid required, at
// most wire.MaxMountGroups groups.
func decodeParamsAs(raw *json.RawMessage, p any, optional []string) (*wire.Identity, error) {
	if raw == nil || !bytes.Contains(*raw, []byte(`"as"`)) {
		return nil, decodeParams(raw, p, optional)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(*raw, &members); err != nil || members == nil {
		return nil, errParams("params must be a JSON object")
	}
	v, ok := members[wire.AsMember]
	if !ok {
		return nil, decodeParams(raw, p, optional)
	}
	delete(members, wire.AsMember)
	var as *wire.Identity
	if string(bytes.TrimSpace(v)) != "null" {
		as = new(wire.Identity)
		if err := decodeParams((*json.RawMessage)(&v), as, nil); err != nil {
			return nil, errParams("member %q: %s", wire.AsMember, strings.TrimPrefix(err.Error(), "invalid params: "))
		}
		if len(as.Groups) > wire.MaxMountGroups {
			return nil, errParams("member %q: %d groups (at most %d)", wire.AsMember, len(as.Groups), wire.MaxMountGroups)
		}
	}
	rest, err := json.Marshal(members)
	if err != nil {
		return nil, errParams("%v", err)
	}
	return as, decodeParams((*json.RawMessage)(&rest), p, optional)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
