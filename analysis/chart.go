package analysis

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"simcash/money"
)

// ChartOptions select what Chart draws.
type ChartOptions struct {
	// Agent limits the chart to one agent; empty draws every agent.
	Agent string
	// Parameter is the policy parameter whose trajectory is drawn; empty
	// picks the first parameter of the first run's policies ("-" draws
	// costs only).
	Parameter string
}

// Colours follow the reference's convergence chart.
var (
	colAccepted = color.RGBA{R: 0x25, G: 0x63, B: 0xeb, A: 0xff} // policy in force
	colRejected = color.RGBA{R: 0xdc, G: 0x26, B: 0x26, A: 0xff} // rejected proposals
	colApproved = color.RGBA{R: 0x16, G: 0xa3, B: 0x4a, A: 0xff} // accepted proposals
	groupColors = []color.RGBA{colAccepted, {R: 0xea, G: 0x58, B: 0x0c, A: 0xff}, {R: 0x7c, G: 0x3a, B: 0xed, A: 0xff},
		{R: 0x0d, G: 0x94, B: 0x88, A: 0xff}, {R: 0xdb, G: 0x27, B: 0x77, A: 0xff}, {R: 0x65, G: 0xa3, B: 0x0d, A: 0xff}}
)

// Chart draws the convergence figure of runs as PNG or SVG (format "png"
// or "svg") to w: per agent, the parameter's trajectory (the value in force
// each iteration, proposals as markers: green accepted, red rejected) and
// the cost per iteration (the policy in force, bootstrap mean in bootstrap
// mode; proposals' costs as markers). Runs of one configuration that differ
// only by seed are drawn as their mean with the 95% interval as a band.
func Chart(w io.Writer, runs []*Run, format string, opt ChartOptions) error {
	if len(runs) == 0 {
		return fmt.Errorf("%w: no runs to chart", ErrBadArgument)
	}
	agents := runs[0].Agents()
	if opt.Agent != "" {
		for _, r := range runs {
			if err := r.checkAgent(opt.Agent); err != nil {
				return err
			}
		}
		agents = []string{opt.Agent}
	}
	if len(agents) == 0 {
		return fmt.Errorf("%w: run %s has no iterations yet", ErrBadArgument, runs[0].ID())
	}
	param := opt.Parameter
	if param == "" {
		if names := runs[0].ParameterNames(agents[0]); len(names) > 0 {
			param = names[0]
		}
	}
	if param == "-" {
		param = ""
	}
	if param != "" {
		found := false
		for _, a := range agents {
			for _, n := range runs[0].ParameterNames(a) {
				found = found || n == param
			}
		}
		if !found {
			return fmt.Errorf("%w: the policies of run %s have no parameter %q (they have: %s)", ErrBadArgument,
				runs[0].ID(), param, strings.Join(runs[0].ParameterNames(agents[0]), ", "))
		}
	}
	groups := GroupRuns(runs)
	cols := 1
	if param != "" {
		cols = 2
	}
	plots := make([][]*plot.Plot, len(agents))
	for i, a := range agents {
		var err error
		if param != "" {
			p, err := panel(groups, a, param, true)
			if err != nil {
				return err
			}
			plots[i] = append(plots[i], p)
		}
		p, err := panel(groups, a, param, false)
		if err != nil {
			return err
		}
		plots[i] = append(plots[i], p)
	}
	width, height := vg.Length(cols)*5.5*vg.Inch, vg.Length(len(agents))*3.2*vg.Inch+0.5*vg.Inch
	var canvas vg.CanvasWriterTo
	switch format {
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))}
	case "svg":
		canvas = vgsvg.New(width, height)
	default:
		return fmt.Errorf("%w: chart format %q: use png or svg", ErrBadArgument, format)
	}
	dc := draw.New(canvas)
	if format == "svg" {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
	}
	title := chartTitle(runs, groups)
	sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 13), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter}
	dc.FillText(sty, vg.Point{X: width / 2, Y: height - 0.3*vg.Inch}, title)
	tiles := draw.Tiles{Rows: len(agents), Cols: cols, PadTop: 0.5 * vg.Inch, PadX: 0.3 * vg.Inch, PadY: 0.3 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.2 * vg.Inch, PadBottom: 0.1 * vg.Inch}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	_, err := canvas.WriteTo(w)
	return err
}

func chartTitle(runs []*Run, groups [][]*Run) string {
	if len(runs) == 1 {
		d := runs[0].Detail
		return fmt.Sprintf("%s  (%s, seed %d, %s)", d.ExperimentName, d.ExperimentID, d.MasterSeed, d.Model)
	}
	names := map[string]bool{}
	for _, r := range runs {
		names[r.Detail.ExperimentName] = true
	}
	var ns []string
	for n := range names {
		ns = append(ns, n)
	}
	configs := "1 configuration"
	if len(groups) > 1 {
		configs = fmt.Sprintf("%d configurations", len(groups))
	}
	return fmt.Sprintf("%s  (%d runs, %s)", strings.Join(sortedStrings(ns), ", "), len(runs), configs)
}

// panel draws one agent's parameter (param true) or cost panel over groups.
func panel(groups [][]*Run, agent, param string, paramPanel bool) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "iteration"
	p.X.Tick.Marker = integerTicks{}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	if paramPanel {
		p.Title.Text = agent + ": " + param
		p.Y.Label.Text = param
	} else {
		p.Title.Text = agent + ": cost per iteration"
		p.Y.Label.Text = "cost"
		p.Y.Tick.Marker = dollarTicks{}
	}
	for gi, g := range groups {
		col := groupColors[gi%len(groupColors)]
		label := groupLabel(g, len(groups))
		var trajs [][]Point
		for _, r := range g {
			t, err := r.Trajectory(agent, param)
			if err != nil {
				return nil, err
			}
			trajs = append(trajs, t)
		}
		mean, lo, hi := pointwise(trajs, func(pt Point) (float64, bool) {
			if paramPanel {
				return pt.Param, pt.HasParam
			}
			return float64(pt.Cost) / 100, true
		})
		if len(mean) == 0 {
			continue
		}
		if len(g) > 1 {
			band := append(append(plotter.XYs{}, lo...), reverse(hi)...)
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return nil, err
			}
			poly.Color = color.NRGBA{R: col.R, G: col.G, B: col.B, A: 0x40}
			poly.LineStyle.Width = 0
			p.Add(poly)
			p.Legend.Add(label+" 95% interval", poly)
		}
		line, err := plotter.NewLine(mean)
		if err != nil {
			return nil, err
		}
		line.Color, line.Width = col, vg.Points(2)
		if paramPanel {
			// A value holds from the iteration it took effect to the next.
			line.StepStyle = plotter.PostStep
		}
		p.Add(line)
		if len(g) > 1 {
			p.Legend.Add(label+" mean", line)
		} else if paramPanel {
			p.Legend.Add(label+"in force", line)
		} else {
			p.Legend.Add(label+"policy in force", line)
		}
		if len(g) == 1 {
			if err := addProposals(p, trajs[0], paramPanel); err != nil {
				return nil, err
			}
		}
	}
	// Headroom above the data for the legend.
	p.Y.Max += (p.Y.Max - p.Y.Min) * 0.45
	if p.Y.Max == p.Y.Min {
		p.Y.Max++
	}
	return p, nil
}

func groupLabel(g []*Run, groups int) string {
	if groups == 1 {
		if len(g) > 1 {
			return fmt.Sprintf("%d seeds", len(g))
		}
		return ""
	}
	d := g[0].Detail
	if len(g) == 1 {
		return fmt.Sprintf("%s seed %d ", d.ExperimentName, d.MasterSeed)
	}
	return fmt.Sprintf("%s %s (%d seeds)", d.ExperimentName, GroupKey(g[0])[:6], len(g))
}

// addProposals marks the proposals of one run: green accepted, red rejected.
func addProposals(p *plot.Plot, traj []Point, paramPanel bool) error {
	var acc, rej plotter.XYs
	for _, pt := range traj {
		pr := pt.Proposal
		if pr == nil {
			continue
		}
		var y float64
		switch {
		case paramPanel && pr.HasParam:
			y = pr.Param
		case !paramPanel && pr.Evaluated:
			y = float64(pr.Cost) / 100
		default:
			continue
		}
		xy := plotter.XY{X: float64(pt.Iteration), Y: y}
		if pr.Accepted {
			acc = append(acc, xy)
		} else {
			rej = append(rej, xy)
		}
	}
	for _, s := range []struct {
		xys   plotter.XYs
		col   color.RGBA
		shape draw.GlyphDrawer
		label string
	}{{acc, colApproved, draw.CircleGlyph{}, "accepted proposal"}, {rej, colRejected, draw.CrossGlyph{}, "rejected proposal"}} {
		if len(s.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: s.col, Radius: vg.Points(3.5), Shape: s.shape}
		p.Add(sc)
		p.Legend.Add(s.label, sc)
	}
	return nil
}

// pointwise is, per iteration, the mean of value over the trajectories that
// have one, and its 95% interval.
func pointwise(trajs [][]Point, value func(Point) (float64, bool)) (mean, lo, hi plotter.XYs) {
	byIter := map[int][]float64{}
	last := 0
	for _, t := range trajs {
		for _, pt := range t {
			if v, ok := value(pt); ok && !math.IsNaN(v) {
				byIter[pt.Iteration] = append(byIter[pt.Iteration], v)
				last = max(last, pt.Iteration)
			}
		}
	}
	for i := 1; i <= last; i++ {
		vs, ok := byIter[i]
		if !ok {
			continue
		}
		s := Summarize(vs)
		x := float64(i)
		mean = append(mean, plotter.XY{X: x, Y: s.Mean})
		lo = append(lo, plotter.XY{X: x, Y: s.Lo})
		hi = append(hi, plotter.XY{X: x, Y: s.Hi})
	}
	return mean, lo, hi
}

func reverse(xys plotter.XYs) plotter.XYs {
	out := make(plotter.XYs, len(xys))
	for i, xy := range xys {
		out[len(xys)-1-i] = xy
	}
	return out
}

// dollarTicks labels a dollar axis with two decimals.
type dollarTicks struct{}

func (dollarTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = money.DollarsF(ts[i].Value * 100)
		}
	}
	return ts
}

// integerTicks labels iterations with whole numbers only.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Label != "" && t.Value != math.Trunc(t.Value) {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 || max-min < 2 {
		out = out[:0]
		for v := math.Ceil(min); v <= max; v++ {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprint(v)})
		}
	}
	return out
}
