package dag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Shape is a worker's size as a task asks for it: `resources: {cpu: 4, memory: 8Gi}`. A
// task's Resources holds either a worker class name (small, medium, large: the jobs
// Terraform makes) or a shape in its canonical form, Shape.String (cpu=4,memory=8Gi), which
// the executor turns into a worker job of that shape, made on first use.
type Shape struct {
	CPU       int // whole vCPUs
	MemoryMiB int // MiB
}

// shapeLimits are Cloud Run jobs' allowed CPU and memory combinations, from the table "vCPU
// and memory" of https://cloud.google.com/run/docs/configuring/jobs/cpu and "Required memory
// when setting a CPU value" of https://cloud.google.com/run/docs/configuring/jobs/memory-limits
// (second generation execution environment, which jobs use: at least 512 MiB; CPU values
// above 1 are whole numbers; below 1 needs request-based billing, which jobs don't have, so
// whole vCPUs only):
//
//	CPUs  memory
//	1     512 MiB to 4 GiB
//	2     512 MiB to 8 GiB
//	4     2 to 16 GiB
//	6     4 to 24 GiB
//	8     4 to 32 GiB
var shapeLimits = []struct{ cpu, minMiB, maxMiB int }{
	{1, 512, 4 << 10},
	{2, 512, 8 << 10},
	{4, 2 << 10, 16 << 10},
	{6, 4 << 10, 24 << 10},
	{8, 4 << 10, 32 << 10},
}

// ValidShapes lists Cloud Run's allowed combinations, for error messages.
func ValidShapes() string {
	parts := make([]string, 0, len(shapeLimits))
	for _, l := range shapeLimits {
		parts = append(parts, fmt.Sprintf("cpu %d with memory %s to %s", l.cpu, formatMiB(l.minMiB), formatMiB(l.maxMiB)))
	}
	return strings.Join(parts, "; ")
}

// Check reports whether Cloud Run runs a job of this shape, and if not, why.
func (s Shape) Check() error {
	for _, l := range shapeLimits {
		if l.cpu != s.CPU {
			continue
		}
		if s.MemoryMiB < l.minMiB || s.MemoryMiB > l.maxMiB {
			return fmt.Errorf("cpu %d needs memory from %s to %s, not %s", s.CPU, formatMiB(l.minMiB), formatMiB(l.maxMiB), formatMiB(s.MemoryMiB))
		}
		return nil
	}
	return fmt.Errorf("cpu %d is not one Cloud Run jobs offer (1, 2, 4, 6 or 8)", s.CPU)
}

// Memory is the memory as Cloud Run writes a limit: "8Gi" or "1536Mi".
func (s Shape) Memory() string { return formatMiB(s.MemoryMiB) }

// String is the canonical form a task's Resources holds: "cpu=4,memory=8Gi".
func (s Shape) String() string { return fmt.Sprintf("cpu=%d,memory=%s", s.CPU, s.Memory()) }

// Slug names the shape in a job name: "c4-m8gi".
func (s Shape) Slug() string { return fmt.Sprintf("c%d-m%s", s.CPU, strings.ToLower(s.Memory())) }

func formatMiB(mib int) string {
	if mib%1024 == 0 {
		return fmt.Sprintf("%dGi", mib/1024)
	}
	return fmt.Sprintf("%dMi", mib)
}

var (
	canonicalShape = regexp.MustCompile(`^cpu=(\d+),memory=(\d+)(Gi|Mi)$`)
	memoryValue    = regexp.MustCompile(`^(\d+)(Gi|Mi)$`)
)

// ParseShape reads a task's Resources as a shape (its canonical form); a class name is not
// one.
func ParseShape(resources string) (Shape, bool) {
	m := canonicalShape.FindStringSubmatch(resources)
	if m == nil {
		return Shape{}, false
	}
	cpu, err1 := strconv.Atoi(m[1])
	mem, err2 := parseMemory(m[2] + m[3])
	if err1 != nil || err2 != nil {
		return Shape{}, false
	}
	return Shape{CPU: cpu, MemoryMiB: mem}, true
}

// parseMemory reads "8Gi" or "512Mi" as MiB.
func parseMemory(s string) (int, error) {
	m := memoryValue.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("memory %q is not a whole number of Gi or Mi, like 4Gi or 512Mi", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 1<<20 {
		return 0, fmt.Errorf("memory %q is too large", s)
	}
	if m[2] == "Gi" {
		n *= 1024
	}
	return n, nil
}

var shapeFields = []string{"cpu", "memory"}

// shape reads `resources: {cpu: N, memory: M}`.
func (p *parser) shape(pr pair, path string) (string, bool) {
	hint := "Cloud Run's combinations: " + ValidShapes()
	f, ok := p.fields(pr.val, pr.val.Line, path, shapeFields, "resources")
	if !ok {
		return "", false
	}
	var s Shape
	good := true
	if x, ok := get(f, "cpu"); ok {
		v := resolve(x.val)
		n, err := strconv.Atoi(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil {
			p.add(x.val.Line, join(path, "cpu"), "cpu must be a whole number of vCPUs, not "+describe(x.val), hint)
			good = false
		}
		s.CPU = n
	} else {
		p.add(pr.val.Line, join(path, "cpu"), "cpu is required with memory", "write resources: {cpu: 2, memory: 4Gi}, or name a class (small, medium, large)")
		good = false
	}
	if x, ok := get(f, "memory"); ok {
		v := resolve(x.val)
		n, err := parseMemory(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil {
			msg := "memory must be like 4Gi or 512Mi, not " + describe(x.val)
			if err != nil && v.Kind == yaml.ScalarNode {
				msg = err.Error()
			}
			p.add(x.val.Line, join(path, "memory"), msg, hint)
			good = false
		}
		s.MemoryMiB = n
	} else {
		p.add(pr.val.Line, join(path, "memory"), "memory is required with cpu", "write resources: {cpu: 2, memory: 4Gi}, or name a class (small, medium, large)")
		good = false
	}
	if !good {
		return "", false
	}
	if err := s.Check(); err != nil {
		p.add(pr.val.Line, path, fmt.Sprintf("resources {cpu: %d, memory: %s} is not a combination Cloud Run allows: %v", s.CPU, s.Memory(), err), hint)
		return "", false
	}
	return s.String(), true
}
