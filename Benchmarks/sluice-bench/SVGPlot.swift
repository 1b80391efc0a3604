import Foundation

/// A small SVG line chart with stacked panels sharing one x axis (seconds), for the sustained
/// and burst benchmarks: a person reading docs/BENCHMARKS.md should see the curve.
struct SVGPlot {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
    }

    struct Panel {
        var title: String
        var unit: String
        var series: [Series]
    }

    var title: String
    var xLabel: String
    var panels: [Panel]
    var width = 900.0
    var panelHeight = 220.0

    func render() -> String {
        let left = 70.0, right = 180.0, top = 40.0, gap = 50.0
        let plotWidth = width - left - right
        let height = top + Double(panels.count) * (panelHeight + gap) + 10
        let xs = panels.flatMap { $0.series.flatMap { $0.points.map(\.x) } }
        let xMax = niceCeiling(xs.max() ?? 1)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        for (index, panel) in panels.enumerated() {
            let y0 = top + Double(index) * (panelHeight + gap)
            let values = panel.series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
            let yMax = niceCeiling(max(values.max() ?? 1, 1e-9))
            func px(_ x: Double) -> Double { left + plotWidth * x / xMax }
            func py(_ y: Double) -> Double { y0 + panelHeight - panelHeight * min(max(y, 0), yMax) / yMax }
            svg += "<text x=\"\(Int(left))\" y=\"\(Int(y0 - 8))\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
            // Grid and y ticks.
            for k in 0...4 {
                let value = yMax * Double(k) / 4
                let y = py(value)
                svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
                svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(label(value))</text>\n"
            }
            // x ticks.
            for k in 0...6 {
                let value = xMax * Double(k) / 6
                let x = px(value)
                svg += "<line x1=\"\(f(x))\" y1=\"\(f(y0 + panelHeight))\" x2=\"\(f(x))\" y2=\"\(f(y0 + panelHeight + 4))\" stroke=\"#444\"/>\n"
                svg += "<text x=\"\(f(x))\" y=\"\(f(y0 + panelHeight + 17))\" text-anchor=\"middle\">\(label(value))</text>\n"
            }
            svg += "<rect x=\"\(f(left))\" y=\"\(f(y0))\" width=\"\(f(plotWidth))\" height=\"\(f(panelHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
            svg += "<text x=\"18\" y=\"\(f(y0 + panelHeight / 2))\" transform=\"rotate(-90 18 \(f(y0 + panelHeight / 2)))\" text-anchor=\"middle\">\(escape(panel.unit))</text>\n"
            for (s, series) in panel.series.enumerated() {
                let points = series.points.filter { $0.y.isFinite }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(series.color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
                for point in series.points where point.y.isFinite {
                    svg += "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"2.5\" fill=\"\(series.color)\"/>\n"
                }
                let ly = y0 + 14 + Double(s) * 18
                svg += "<line x1=\"\(f(left + plotWidth + 12))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plotWidth + 32))\" y2=\"\(f(ly - 4))\" stroke=\"\(series.color)\" stroke-width=\"3\"/>\n"
                svg += "<text x=\"\(f(left + plotWidth + 38))\" y=\"\(f(ly))\">\(escape(series.name))</text>\n"
            }
            if index == panels.count - 1 {
                svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(y0 + panelHeight + 34))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }

    private func label(_ value: Double) -> String {
        if value >= 10_000 { return String(format: "%.0fk", value / 1000) }
        if value >= 100 || value == value.rounded() { return String(format: "%.0f", value) }
        return String(format: "%.1f", value)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// 1, 2, 2.5 or 5 times a power of ten, at least `value`.
    private func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let power = pow(10, floor(log10(value)))
        for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * power >= value { return step * power }
        return 10 * power
    }
}
