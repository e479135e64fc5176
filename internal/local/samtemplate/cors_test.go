package samtemplate

import (
	"errors"
	"reflect"
	"testing"
)

// corsTemplateSrc is an HttpApi whose CorsConfiguration the tests below
// replace; %CORS% marks the spot.
const corsTemplateSrc = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Origin:
    Type: String
  Age:
    Type: Number
Resources:
  Fn:
    Type: AWS::Serverless::Function
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
%CORS%
`

func parseCORSTemplate(t *testing.T, globals, cors string) *Template {
	t.Helper()
	src := replaceOnce(t, corsTemplateSrc, "%CORS%", cors)
	if globals != "" {
		src = "Globals:\n  HttpApi:\n" + globals + src
	}
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tpl
}

func TestHTTPAPICORS(t *testing.T) {
	values := map[string]string{"Origin": "https://example.com", "Age": "45", "Domain": "example.org"}
	tests := []struct {
		name          string
		globals, cors string
		want          CORS // as written
		wantOK        bool
		resolved      CORS
	}{
		{
			name: "every key",
			cors: `
      CorsConfiguration:
        AllowOrigins: [!Ref Origin, !Sub "https://${Domain}", "https://lit.example"]
        AllowMethods: [GET, PUT]
        AllowHeaders: [content-type]
        ExposeHeaders: [etag, x-total]
        MaxAge: 300
        AllowCredentials: true`,
			want: CORS{
				AllowOrigins:     []string{"${Origin}", "https://${Domain}", "https://lit.example"},
				AllowMethods:     []string{"GET", "PUT"},
				AllowHeaders:     []string{"content-type"},
				ExposeHeaders:    []string{"etag", "x-total"},
				MaxAge:           300,
				AllowCredentials: true,
			},
			wantOK: true,
			resolved: CORS{
				AllowOrigins:     []string{"https://example.com", "https://example.org", "https://lit.example"},
				AllowMethods:     []string{"GET", "PUT"},
				AllowHeaders:     []string{"content-type"},
				ExposeHeaders:    []string{"etag", "x-total"},
				MaxAge:           300,
				AllowCredentials: true,
			},
		},
		{
			name:     "literal placeholder stays literal",
			cors:     "      CorsConfiguration:\n        AllowHeaders: ['x-${odd}']",
			want:     CORS{AllowHeaders: []string{"x-${!odd}"}},
			wantOK:   true,
			resolved: CORS{AllowHeaders: []string{"x-${odd}"}},
		},
		{
			name:    "globals merged, lists appended, scalars overridden",
			globals: "    CorsConfiguration:\n      AllowOrigins: [https://global.example]\n      MaxAge: 10\n",
			cors:    "      CorsConfiguration:\n        AllowOrigins: [!Ref Origin]\n        MaxAge: 20",
			want:    CORS{AllowOrigins: []string{"https://global.example", "${Origin}"}, MaxAge: 20},
			wantOK:  true,
			resolved: CORS{
				AllowOrigins: []string{"https://global.example", "https://example.com"},
				MaxAge:       20,
			},
		},
		{
			name:     "globals alone",
			globals:  "    CorsConfiguration:\n      AllowMethods: [GET]\n",
			cors:     "      Name: api",
			want:     CORS{AllowMethods: []string{"GET"}},
			wantOK:   true,
			resolved: CORS{AllowMethods: []string{"GET"}},
		},
		{name: "no configuration", cors: "      Name: api"},
		{name: "disabled", cors: "      CorsConfiguration: false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseCORSTemplate(t, tc.globals, tc.cors)
			got, ok, err := tpl.HTTPAPICORS("Api")
			if err != nil || ok != tc.wantOK || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("HTTPAPICORS(Api) = %+v, %v, %v\nwant %+v, %v", got, ok, err, tc.want, tc.wantOK)
			}
			resolved, ok, err := tpl.ResolvedHTTPCORS(values)
			if err != nil || ok != tc.wantOK || !reflect.DeepEqual(resolved, tc.resolved) {
				t.Errorf("ResolvedHTTPCORS = %+v, %v, %v\nwant %+v, %v", resolved, ok, err, tc.resolved, tc.wantOK)
			}
		})
	}
}

// TestHTTPAPICORSIntrinsicMaxAge: the written form has no number to give,
// the resolved one has.
func TestHTTPAPICORSIntrinsicMaxAge(t *testing.T) {
	tpl := parseCORSTemplate(t, "", "      CorsConfiguration:\n        MaxAge: !Ref Age\n        AllowCredentials: !Ref Creds")
	if _, _, err := tpl.HTTPAPICORS("Api"); !errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("HTTPAPICORS error = %v, want ErrInvalidTemplate", err)
	}
	got, ok, err := tpl.ResolvedHTTPCORS(map[string]string{"Age": "45", "Creds": "false"})
	if err != nil || !ok || !reflect.DeepEqual(got, CORS{MaxAge: 45}) {
		t.Errorf("ResolvedHTTPCORS = %+v, %v, %v; want MaxAge 45", got, ok, err)
	}
}

func TestHTTPAPICORSNotAnHttpApi(t *testing.T) {
	tpl := parseCORSTemplate(t, "", "      CorsConfiguration:\n        AllowOrigins: ['*']")
	for _, id := range []string{"Fn", "Missing"} {
		if got, ok, err := tpl.HTTPAPICORS(id); ok || err != nil || !reflect.DeepEqual(got, CORS{}) {
			t.Errorf("HTTPAPICORS(%s) = %+v, %v, %v; want nothing", id, got, ok, err)
		}
	}
	noAPI, err := Parse([]byte("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := noAPI.ResolvedHTTPCORS(nil); ok || err != nil || !reflect.DeepEqual(got, CORS{}) {
		t.Errorf("ResolvedHTTPCORS without an HttpApi = %+v, %v, %v; want nothing", got, ok, err)
	}
}

func TestHTTPAPICORSRejects(t *testing.T) {
	tests := []struct {
		name, cors string
		// writtenErr is HTTPAPICORS's error, resolvedErr ResolvedHTTPCORS's.
		writtenErr, resolvedErr error
	}{
		{"bare true", "      CorsConfiguration: true", ErrInvalidTemplate, ErrInvalidTemplate},
		{"origin string", "      CorsConfiguration: https://example.com", ErrInvalidTemplate, ErrInvalidTemplate},
		{"list not a list", "      CorsConfiguration:\n        AllowOrigins: https://example.com", ErrInvalidTemplate, ErrInvalidTemplate},
		{"unknown key", "      CorsConfiguration:\n        AllowOrigin: ['*']", ErrInvalidTemplate, ErrInvalidTemplate},
		{"max age not a number", "      CorsConfiguration:\n        MaxAge: soon", ErrInvalidTemplate, ErrInvalidTemplate},
		{"negative max age", "      CorsConfiguration:\n        MaxAge: -1", ErrInvalidTemplate, ErrInvalidTemplate},
		{"credentials not a boolean", "      CorsConfiguration:\n        AllowCredentials: sometimes", ErrInvalidTemplate, ErrInvalidTemplate},
		{"unresolved origin", "      CorsConfiguration:\n        AllowOrigins: [!Ref Nope]", nil, ErrUnresolved},
		{"unresolved max age", "      CorsConfiguration:\n        MaxAge: !Ref Nope", ErrInvalidTemplate, ErrUnresolved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseCORSTemplate(t, "", tc.cors)
			if _, _, err := tpl.HTTPAPICORS("Api"); !errors.Is(err, tc.writtenErr) {
				t.Errorf("HTTPAPICORS error = %v, want %v", err, tc.writtenErr)
			}
			if got, ok, err := tpl.ResolvedHTTPCORS(map[string]string{}); !errors.Is(err, tc.resolvedErr) || ok {
				t.Errorf("ResolvedHTTPCORS = %+v, %v, %v; want error %v", got, ok, err, tc.resolvedErr)
			}
		})
	}
}

func TestResolvedHTTPCORSWantsOneAPI(t *testing.T) {
	src := corsTemplateSrc + "  Other:\n    Type: AWS::Serverless::HttpApi\n"
	tpl, err := Parse([]byte(replaceOnce(t, src, "%CORS%", "      Name: api")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := tpl.ResolvedHTTPCORS(nil); ok || !errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("ResolvedHTTPCORS with two HttpApis = %v, %v; want ErrInvalidTemplate", ok, err)
	}
}
