package incidents

import (
	"reflect"
	"testing"
)

// TestCloneSharesNothing fills every slice and map field of an Incident and
// checks that its clone holds its own copy, so a field added later without
// a line in Clone fails here.
func TestCloneSharesNothing(t *testing.T) {
	var inc Incident
	v := reflect.ValueOf(&inc).Elem()
	for i := range v.NumField() {
		f, field := v.Field(i), v.Type().Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			if !flat(f.Type().Elem()) {
				t.Errorf("%s: its elements hold references; Clone must copy them deeply", field.Name)
			}
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
			f.SetMapIndex(reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem())
		case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("%s: a %s field; Clone must copy it", field.Name, f.Kind())
		}
	}
	c := reflect.ValueOf(inc.Clone()).Elem()
	if !reflect.DeepEqual(c.Interface(), inc) {
		t.Fatalf("the clone differs:\n%+v\n%+v", c.Interface(), inc)
	}
	for i := range v.NumField() {
		f, g := v.Field(i), c.Field(i)
		if (f.Kind() == reflect.Slice || f.Kind() == reflect.Map) && f.UnsafePointer() == g.UnsafePointer() {
			t.Errorf("%s is shared between the incident and its clone", v.Type().Field(i).Name)
		}
	}
}

// flat reports whether a value of type t holds no references (a struct of
// strings, numbers and times).
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return false
	case reflect.Struct:
		if t.PkgPath() == "time" && t.Name() == "Time" {
			return true // its location pointer is shared by design
		}
		for i := range t.NumField() {
			if !flat(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}
