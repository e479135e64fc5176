package samtemplate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnresolved reports ${Name} placeholders Resolve had no value for.
var ErrUnresolved = errors.New("unresolved placeholders")

// scalarString formats a YAML scalar as CloudFormation would pass it on:
// numbers and booleans become their text.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return "", false
}

// render turns a property value into one string in Fn::Sub syntax, so every
// value, literal or intrinsic, is resolved the same way by Resolve:
//
//	"text"                       → "text" (a literal "${X}" becomes "${!X}")
//	5, true                      → "5", "true"
//	{"Ref": "X"}                 → "${X}" (parameters, resources, AWS::Region…)
//	{"Fn::GetAtt": ["X", "Arn"]} → "${X.Arn}"
//	{"Fn::Sub": "…${X}…"}        → "…${X}…"; with a variable map, each
//	                                variable is replaced by its rendering
//	{"Fn::Join": [d, [a, b]]}    → render(a) d render(b)
//
// Anything else (Fn::If, Fn::Select…) renders as "${Fn::If}" and the like, a
// placeholder Resolve cannot fill unless the caller supplies it.
func render(v any) string {
	if s, ok := v.(string); ok {
		return escapeLiteral(s)
	}
	if s, ok := scalarString(v); ok {
		return s
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		return "${?}"
	}
	switch fn {
	case "Ref":
		if name, ok := arg.(string); ok {
			return "${" + name + "}"
		}
	case "Fn::GetAtt":
		if parts, ok := arg.([]any); ok && len(parts) == 2 {
			resource, rok := parts[0].(string)
			attribute, aok := parts[1].(string)
			if rok && aok {
				return "${" + resource + "." + attribute + "}"
			}
		}
	case "Fn::Sub":
		if s, ok := renderSub(arg); ok {
			return s
		}
	case "Fn::Join":
		if s, ok := renderJoin(arg); ok {
			return s
		}
	}
	return "${" + fn + "}"
}

// escapeLiteral turns each ${X} of a literal into Sub's escape ${!X}, so
// Resolve gives the literal back unchanged.
func escapeLiteral(s string) string {
	var b strings.Builder
	for {
		start := strings.Index(s, "${")
		if start < 0 {
			break
		}
		end := strings.IndexByte(s[start+2:], '}')
		if end < 0 {
			break
		}
		closing := start + 2 + end + 1
		b.WriteString(s[:start+2])
		b.WriteByte('!')
		b.WriteString(s[start+2 : closing])
		s = s[closing:]
	}
	b.WriteString(s)
	return b.String()
}

// intrinsic splits a one-key map, the shape of every intrinsic function,
// into the function's name and argument.
func intrinsic(v any) (fn string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		fn, arg = k, a
	}
	return fn, arg, true
}

func renderSub(arg any) (string, bool) {
	switch x := arg.(type) {
	case string:
		return x, true
	case []any:
		if len(x) != 2 {
			return "", false
		}
		tmpl, ok := x[0].(string)
		vars, vok := x[1].(map[string]any)
		if !ok || !vok {
			return "", false
		}
		return expand(tmpl, true, func(name string) (string, bool) {
			v, ok := vars[name]
			if !ok {
				return "", false
			}
			return render(v), true
		}), true
	}
	return "", false
}

func renderJoin(arg any) (string, bool) {
	x, ok := arg.([]any)
	if !ok || len(x) != 2 {
		return "", false
	}
	delimiter, dok := x[0].(string)
	parts, pok := x[1].([]any)
	if !dok || !pok {
		return "", false
	}
	rendered := make([]string, len(parts))
	for i, p := range parts {
		rendered[i] = render(p)
	}
	return strings.Join(rendered, render(delimiter)), true
}

// expand replaces each ${Name} of a Sub-syntax template for which replace
// reports a value. ${!Literal} is Sub's escape for a literal "${Literal}":
// kept as the escape when keepEscapes (the result is still a template),
// unescaped otherwise (the result is final text).
func expand(tmpl string, keepEscapes bool, replace func(name string) (string, bool)) string {
	var b strings.Builder
	for {
		start := strings.Index(tmpl, "${")
		if start < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:start])
		rest := tmpl[start+2:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			b.WriteString(tmpl[start:])
			return b.String()
		}
		name := rest[:end]
		switch {
		case strings.HasPrefix(name, "!"):
			if keepEscapes {
				b.WriteString("${" + name + "}")
			} else {
				b.WriteString("${" + name[1:] + "}")
			}
		default:
			if v, ok := replace(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("${" + name + "}")
			}
		}
		tmpl = rest[end+1:]
	}
}

// Resolve fills a value rendered by this package (Function.Environment,
// Parameter.Default…) with values, keyed as the placeholders are written:
// "ConnectionsTable", "AWS::Region", "ConnectionFunction.Arn". Every
// placeholder without a value is reported at once, in an error matching
// ErrUnresolved.
func Resolve(tmpl string, values map[string]string) (string, error) {
	var missing []string
	out := expand(tmpl, false, func(name string) (string, bool) {
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
		}
		return v, ok
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%w in %q: %s", ErrUnresolved, tmpl, strings.Join(missing, ", "))
	}
	return out, nil
}
