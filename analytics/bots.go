package analytics

import "strings"

// maxUserAgentBytes is how much of a User-Agent IsBot reads: real ones are far
// shorter, and the cost of a request must not grow with a hostile header.
const maxUserAgentBytes = 1024

// botMarkers are lower-case substrings found in the User-Agent of robots and never
// in that of a person's browser: crawlers and monitors name themselves ("Googlebot",
// "bingbot", "AhrefsBot", "Baiduspider", "Slurp", "facebookexternalhit", "Pingdom");
// headless and automated browsers ("HeadlessChrome", "PhantomJS", "Puppeteer",
// "Playwright", "Selenium", "Lighthouse"); command-line tools and HTTP libraries
// ("curl/", "Wget/", "Go-http-client/", "python-requests/", "okhttp/" and friends).
var botMarkers = []string{
	"bot", "crawl", "spider", "slurp", "facebookexternalhit", "pingdom", "uptime",
	"headless", "phantomjs", "puppeteer", "playwright", "selenium", "webdriver", "lighthouse",
	"curl/", "wget/", "httpie/", "go-http-client", "python-requests", "python-urllib", "aiohttp",
	"okhttp", "apache-httpclient", "java/", "libwww-perl", "node-fetch", "axios/", "scrapy",
}

// IsBot reports whether a request with this User-Agent is an obvious robot: an empty
// User-Agent, or one containing a marker of botMarkers, case-insensitively, in its
// first 1 KiB. "Cubot", a phone maker whose name ends in "bot", is not a robot.
// Robots that pretend to be browsers are not caught: this is a filter for honest
// crawlers and scripts, not a defence.
func IsBot(userAgent string) bool {
	if len(userAgent) > maxUserAgentBytes {
		userAgent = userAgent[:maxUserAgentBytes]
	}
	ua := strings.TrimSpace(asciiLower(userAgent))
	if ua == "" {
		return true
	}
	ua = strings.ReplaceAll(ua, "cubot", "")
	for _, m := range botMarkers {
		if strings.Contains(ua, m) {
			return true
		}
	}
	return false
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte as it is,
// so that the result has the same length (strings.ToLower may change it).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
