package samtemplate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CORS is an AWS::Serverless::HttpApi's CorsConfiguration.
type CORS struct {
	AllowOrigins  []string
	AllowMethods  []string
	AllowHeaders  []string
	ExposeHeaders []string
	// MaxAge is how many seconds a browser may reuse a preflight answer; 0
	// when unset.
	MaxAge int
	// AllowCredentials is SAM's AllowCredentials: whether browsers may send
	// cookies and authorization headers cross-origin.
	AllowCredentials bool
}

// isCORSKey tells whether key is one of SAM's HttpApiCorsConfiguration.
func isCORSKey(key string) bool {
	switch key {
	case "AllowCredentials", "AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders", "MaxAge":
		return true
	}
	return false
}

// corsTemplate is a CorsConfiguration with every value rendered, so one
// reading serves both the template view and the resolved one.
type corsTemplate struct {
	origins, methods, headers, expose []string
	// maxAge and credentials are "" when unset.
	maxAge, credentials string
}

// HTTPAPICORS returns the CorsConfiguration of the AWS::Serverless::HttpApi
// logicalID, with Globals.HttpApi applied. Every string is in Resolve's
// syntax (!Ref AllowedOrigin is "${AllowedOrigin}"); MaxAge and
// AllowCredentials must be literals here (ResolvedHTTPCORS also takes
// intrinsics). ok is false when the resource is not an HttpApi or has no
// CORS configuration; an error reports a configuration this package cannot
// read.
func (t *Template) HTTPAPICORS(logicalID string) (cors CORS, ok bool, err error) {
	ct, ok, err := t.corsTemplate(logicalID)
	if err != nil || !ok {
		return CORS{}, false, err
	}
	cors, err = ct.build(func(s string) (string, error) { return s, nil })
	if err != nil {
		return CORS{}, false, fmt.Errorf("samtemplate: HttpApi %s CorsConfiguration: %w", logicalID, err)
	}
	return cors, true, nil
}

// ResolvedHTTPCORS returns the CorsConfiguration of the template's one
// AWS::Serverless::HttpApi with every value resolved by Resolve with values,
// as the local stack serves it. ok is false when the template has no
// HttpApi or it configures no CORS (SAM's implicit API is not covered). An
// unresolved placeholder is an error matching ErrUnresolved; more than one
// HttpApi, or a configuration this package cannot read, one matching
// ErrInvalidTemplate.
func (t *Template) ResolvedHTTPCORS(values map[string]string) (cors CORS, ok bool, err error) {
	var apis []string
	for id, r := range t.resources {
		if r.isHTTPAPI() {
			apis = append(apis, id)
		}
	}
	slices.Sort(apis)
	switch len(apis) {
	case 0:
		return CORS{}, false, nil
	case 1:
	default:
		return CORS{}, false, fmt.Errorf("%w: want at most one HTTP API, have %v", ErrInvalidTemplate, apis)
	}
	ct, ok, err := t.corsTemplate(apis[0])
	if err != nil || !ok {
		return CORS{}, false, err
	}
	cors, err = ct.build(func(s string) (string, error) { return Resolve(s, values) })
	if err != nil {
		return CORS{}, false, fmt.Errorf("samtemplate: HttpApi %s CorsConfiguration: %w", apis[0], err)
	}
	return cors, true, nil
}

// corsTemplate reads the HttpApi's CorsConfiguration, Globals.HttpApi's
// merged in as SAM merges globals.
func (t *Template) corsTemplate(logicalID string) (corsTemplate, bool, error) {
	r, ok := t.resources[logicalID]
	if !ok || !r.isHTTPAPI() {
		return corsTemplate{}, false, nil
	}
	var global any
	if t.globalHTTPAPI != nil && r.Type == TypeHTTPAPI {
		global = t.globalHTTPAPI["CorsConfiguration"]
	}
	raw := mergeGlobals(global, r.Properties["CorsConfiguration"])
	switch x := raw.(type) {
	case nil:
		return corsTemplate{}, false, nil
	case bool:
		if !x {
			return corsTemplate{}, false, nil
		}
	case map[string]any:
		return readCORS(logicalID, x)
	}
	// A bare true or origin string: SAM's documents do not settle what they
	// allow, so guessing here could let the local stack differ from AWS.
	return corsTemplate{}, false, fmt.Errorf("%w: HttpApi %s: CorsConfiguration %s is not a mapping", ErrInvalidTemplate, logicalID, render(raw))
}

func readCORS(logicalID string, m map[string]any) (corsTemplate, bool, error) {
	for k := range m {
		if !isCORSKey(k) {
			return corsTemplate{}, false, fmt.Errorf("%w: HttpApi %s: unknown CorsConfiguration key %s", ErrInvalidTemplate, logicalID, k)
		}
	}
	var ct corsTemplate
	lists := []struct {
		key string
		dst *[]string
	}{
		{"AllowOrigins", &ct.origins},
		{"AllowMethods", &ct.methods},
		{"AllowHeaders", &ct.headers},
		{"ExposeHeaders", &ct.expose},
	}
	for _, l := range lists {
		v, ok := m[l.key]
		if !ok || v == nil {
			continue
		}
		items, ok := v.([]any)
		if !ok {
			return corsTemplate{}, false, fmt.Errorf("%w: HttpApi %s: CorsConfiguration.%s %s is not a list", ErrInvalidTemplate, logicalID, l.key, render(v))
		}
		for _, item := range items {
			*l.dst = append(*l.dst, render(item))
		}
	}
	ct.maxAge = stringProp(m, "MaxAge")
	ct.credentials = stringProp(m, "AllowCredentials")
	return ct, true, nil
}

// build produces the CORS with each value passed through fill.
func (ct corsTemplate) build(fill func(string) (string, error)) (CORS, error) {
	var cors CORS
	lists := []struct {
		name string
		src  []string
		dst  *[]string
	}{
		{"AllowOrigins", ct.origins, &cors.AllowOrigins},
		{"AllowMethods", ct.methods, &cors.AllowMethods},
		{"AllowHeaders", ct.headers, &cors.AllowHeaders},
		{"ExposeHeaders", ct.expose, &cors.ExposeHeaders},
	}
	for _, l := range lists {
		for _, s := range l.src {
			v, err := fill(s)
			if err != nil {
				return CORS{}, fmt.Errorf("%s: %w", l.name, err)
			}
			*l.dst = append(*l.dst, v)
		}
	}
	if ct.maxAge != "" {
		v, err := fill(ct.maxAge)
		if err != nil {
			return CORS{}, fmt.Errorf("MaxAge: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return CORS{}, fmt.Errorf("%w: MaxAge %q is not a number of seconds", ErrInvalidTemplate, v)
		}
		cors.MaxAge = n
	}
	if ct.credentials != "" {
		v, err := fill(ct.credentials)
		if err != nil {
			return CORS{}, fmt.Errorf("AllowCredentials: %w", err)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return CORS{}, fmt.Errorf("%w: AllowCredentials %q is not a boolean", ErrInvalidTemplate, v)
		}
		cors.AllowCredentials = b
	}
	return cors, nil
}
