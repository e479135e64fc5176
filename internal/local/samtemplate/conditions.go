package samtemplate

import (
	"fmt"
	"maps"
	"slices"
)

// noValue is what !Ref AWS::NoValue leaves: the property, or list entry, is
// dropped.
type noValue struct{}

// Resolved returns the template as CloudFormation deploys it with values
// (parameters by name, the defaults for those missing; the same map
// Resolve takes): its Conditions
// evaluated, every Fn::If replaced by the branch it picks, AWS::NoValue
// removed and the resources whose Condition is false left out. The
// conditions' values are in Conditions.
func (t *Template) Resolved(values map[string]string) (*Template, error) {
	conds, err := t.evalConditions(values)
	if err != nil {
		return nil, err
	}
	root, err := pickBranches(t.root, conds)
	if err != nil {
		return nil, err
	}
	m, _ := root.(map[string]any)
	res, _ := m["Resources"].(map[string]any)
	for id, r := range res {
		rm, _ := r.(map[string]any)
		name, has := rm["Condition"].(string)
		if !has {
			continue
		}
		on, ok := conds[name]
		if !ok {
			return nil, fmt.Errorf("%w: resource %s: no condition %s", ErrInvalidTemplate, id, name)
		}
		if !on {
			delete(res, id)
		}
	}
	out, err := fromRoot(m)
	if err != nil {
		return nil, err
	}
	out.conditions = conds
	return out, nil
}

// Conditions returns the conditions' values of a template from Resolved;
// nil for one as written.
func (t *Template) Conditions() map[string]bool { return maps.Clone(t.conditions) }

func (t *Template) evalConditions(given map[string]string) (map[string]bool, error) {
	values := maps.Clone(given)
	if values == nil {
		values = map[string]string{}
	}
	for name, p := range t.Parameters() {
		if _, ok := values[name]; !ok && p.HasDefault {
			values[name] = p.Default
		}
	}
	raw, _ := t.root["Conditions"].(map[string]any)
	out := map[string]bool{}
	visiting := map[string]bool{}
	var eval func(name string) (bool, error)
	var expr func(v any) (bool, error)
	eval = func(name string) (bool, error) {
		if v, ok := out[name]; ok {
			return v, nil
		}
		def, ok := raw[name]
		if !ok {
			return false, fmt.Errorf("%w: no condition %s", ErrInvalidTemplate, name)
		}
		if visiting[name] {
			return false, fmt.Errorf("%w: condition %s refers to itself", ErrInvalidTemplate, name)
		}
		visiting[name] = true
		v, err := expr(def)
		if err != nil {
			return false, fmt.Errorf("condition %s: %w", name, err)
		}
		out[name] = v
		return v, nil
	}
	operand := func(v any) (string, error) {
		return Resolve(render(v), values)
	}
	expr = func(v any) (bool, error) {
		fn, arg, ok := intrinsic(v)
		if !ok {
			return false, fmt.Errorf("%w: %s is no condition function", ErrInvalidTemplate, render(v))
		}
		if fn == "Condition" {
			name, _ := arg.(string)
			return eval(name)
		}
		args, _ := arg.([]any)
		switch fn {
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("%w: Fn::Equals takes two values", ErrInvalidTemplate)
			}
			a, err := operand(args[0])
			if err != nil {
				return false, err
			}
			b, err := operand(args[1])
			return a == b, err
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("%w: Fn::Not takes one condition", ErrInvalidTemplate)
			}
			x, err := expr(args[0])
			return !x, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 {
				return false, fmt.Errorf("%w: %s takes two conditions or more", ErrInvalidTemplate, fn)
			}
			all := fn == "Fn::And"
			for _, a := range args {
				x, err := expr(a)
				if err != nil {
					return false, err
				}
				if x != all {
					return !all, nil
				}
			}
			return all, nil
		}
		return false, fmt.Errorf("%w: %s is no condition function", ErrInvalidTemplate, fn)
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if _, err := eval(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pickBranches copies v with each Fn::If replaced by its chosen branch and
// AWS::NoValue dropped from maps and lists.
func pickBranches(v any, conds map[string]bool) (any, error) {
	if fn, arg, ok := intrinsic(v); ok {
		switch {
		case fn == "Fn::If":
			args, _ := arg.([]any)
			name, _ := args[0].(string)
			if len(args) != 3 || name == "" {
				return nil, fmt.Errorf("%w: Fn::If takes a condition and two values", ErrInvalidTemplate)
			}
			on, ok := conds[name]
			if !ok {
				return nil, fmt.Errorf("%w: Fn::If: no condition %s", ErrInvalidTemplate, name)
			}
			if on {
				return pickBranches(args[1], conds)
			}
			return pickBranches(args[2], conds)
		case fn == "Ref" && arg == "AWS::NoValue":
			return noValue{}, nil
		}
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			p, err := pickBranches(e, conds)
			if err != nil {
				return nil, err
			}
			if _, drop := p.(noValue); !drop {
				out[k] = p
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			p, err := pickBranches(e, conds)
			if err != nil {
				return nil, err
			}
			if _, drop := p.(noValue); !drop {
				out = append(out, p)
			}
		}
		return out, nil
	}
	return v, nil
}
