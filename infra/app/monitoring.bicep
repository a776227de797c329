// Application Insights on a Log Analytics workspace. Local (instrumentation key) authentication
// is off: the app sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// in app/api.bicep, Monitoring Metrics Publisher in app/rbac.bicep).

param logAnalyticsName string
param applicationInsightsName string
param location string = resourceGroup().location
param tags object = {}

@description('Days Log Analytics keeps logs and telemetry.')
param dataRetention int = 30

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'loganalytics'
  params: {
    name: logAnalyticsName
    location: location
    tags: tags
    dataRetention: dataRetention
  }
}

module applicationInsights 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appinsights'
  params: {
    name: applicationInsightsName
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.outputs.name
output logAnalyticsResourceId string = logAnalytics.outputs.resourceId
