package samtemplate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// ErrUnsupportedYAML reports YAML the loader does not accept: anchors,
// aliases, merge keys and tags CloudFormation does not define.
var ErrUnsupportedYAML = errors.New("unsupported YAML")

// intrinsicKey maps one of CloudFormation's short-form tags to its
// long-form key. goccy/go-yaml's decoder silently drops tags it does not
// know (`!Ref Foo` decodes as "Foo"), so the template is read from the AST
// instead and each tag becomes the long form, as CloudFormation reads it.
func intrinsicKey(tag string) (string, bool) {
	switch tag {
	case "!Ref":
		return "Ref", true
	case "!Condition":
		return "Condition", true
	case "!Base64", "!Cidr", "!FindInMap", "!GetAtt", "!GetAZs", "!ImportValue",
		"!Join", "!Length", "!Select", "!Split", "!Sub", "!ToJsonString",
		"!Transform", "!And", "!Equals", "!If", "!Not", "!Or":
		return "Fn::" + tag[1:], true
	}
	return "", false
}

// decodeYAML parses one YAML document into maps, slices and scalars, with
// intrinsic-function tags turned into their {"Fn::X": …} form.
func decodeYAML(src []byte) (any, error) {
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, err
	}
	switch len(file.Docs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d documents, want one", ErrUnsupportedYAML, len(file.Docs))
	}
	return convertNode(file.Docs[0].Body)
}

func convertNode(node ast.Node) (any, error) {
	switch n := node.(type) {
	case nil:
		return nil, nil
	case *ast.DocumentNode:
		return convertNode(n.Body)
	case *ast.MappingNode:
		return convertMapping(n.Values)
	case *ast.MappingValueNode:
		return convertMapping([]*ast.MappingValueNode{n})
	case *ast.SequenceNode:
		out := make([]any, 0, len(n.Values))
		for _, v := range n.Values {
			c, err := convertNode(v)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	case *ast.TagNode:
		return convertTag(n)
	case *ast.AnchorNode, *ast.AliasNode:
		return nil, fmt.Errorf("%w: anchor or alias at %s", ErrUnsupportedYAML, position(node))
	case *ast.CommentGroupNode:
		return nil, nil
	default:
		var v any
		if err := yaml.NodeToValue(node, &v); err != nil {
			return nil, fmt.Errorf("value at %s: %w", position(node), err)
		}
		return v, nil
	}
}

func convertMapping(values []*ast.MappingValueNode) (map[string]any, error) {
	out := make(map[string]any, len(values))
	for _, mv := range values {
		if mv.Key.IsMergeKey() {
			return nil, fmt.Errorf("%w: merge key at %s", ErrUnsupportedYAML, position(mv))
		}
		k, err := convertNode(mv.Key)
		if err != nil {
			return nil, err
		}
		key, ok := scalarString(k)
		if !ok {
			return nil, fmt.Errorf("%w: non-scalar key at %s", ErrUnsupportedYAML, position(mv))
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("duplicate key %q at %s", key, position(mv))
		}
		v, err := convertNode(mv.Value)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

func convertTag(n *ast.TagNode) (any, error) {
	tag := n.Start.Value
	if strings.HasPrefix(tag, "!!") {
		// A standard YAML tag (!!str, !!int…): the decoder applies it.
		var v any
		if err := yaml.NodeToValue(n, &v); err != nil {
			return nil, fmt.Errorf("value at %s: %w", position(n), err)
		}
		return v, nil
	}
	fn, ok := intrinsicKey(tag)
	if !ok {
		return nil, fmt.Errorf("%w: tag %s at %s", ErrUnsupportedYAML, tag, position(n))
	}
	v, err := convertNode(n.Value)
	if err != nil {
		return nil, err
	}
	if s, isString := v.(string); isString && fn == "Fn::GetAtt" {
		// The short form "Resource.Attribute" splits at the first dot;
		// attribute names may contain further dots (Endpoint.Address).
		resource, attribute, found := strings.Cut(s, ".")
		if !found {
			return nil, fmt.Errorf("!GetAtt %q at %s: want Resource.Attribute", s, position(n))
		}
		return map[string]any{fn: []any{resource, attribute}}, nil
	}
	return map[string]any{fn: v}, nil
}

func position(node ast.Node) string {
	if node == nil || node.GetToken() == nil || node.GetToken().Position == nil {
		return "unknown position"
	}
	p := node.GetToken().Position
	return fmt.Sprintf("line %d column %d", p.Line, p.Column)
}
