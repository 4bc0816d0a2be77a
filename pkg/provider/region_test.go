package provider

import "testing"

func TestRegionBlocked(t *testing.T) {
	tests := []struct {
		style  Style
		status int
		body   string
		want   bool
	}{
		{StyleOpenAI, 403, `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`, true},
		{StyleAnthropic, 403, `{"type":"error","error":{"type":"forbidden","message":"Request not allowed"}}`, true},
		{StyleGemini, 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, true},
		{StyleOpenAI, 403, `{"error":{"message":"This model is not available in your region."}}`, true},
		{StyleOpenAI, 403, `{"error":{"message":"You do not have access to this model","type":"invalid_request_error"}}`, false},
		{StyleOpenAI, 400, `unsupported_country_region_territory`, false},
		{StyleGemini, 400, `{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}`, false},
		{StyleAnthropic, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, false},
	}
	for _, tc := range tests {
		if got := RegionBlocked(tc.style, tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("RegionBlocked(%s, %d, %s) = %v", tc.style, tc.status, tc.body, got)
		}
	}
}
