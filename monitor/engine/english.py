"""The most frequent English words (top 8,000 of wordfreq 3.1's English list, letters only).

Why: common words must never be fuzzy-matched into names ("sharia" is not "Sharaa",
"ambassador" never hides "Assad"), and a term token that is a common word says little about
which entity is meant. A text token in this set seeds candidates only by exact equality, and
a surname-only mention needs a surname outside it. Generated once with
``wordfreq.top_n_list("en", 8000)``; wordfreq is not a runtime dependency. The list derives
from wordfreq's data (Robyn Speer et al.), which is licensed CC BY-SA 4.0.
"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COMMON_WORDS: frozenset[str] = _words(
    """
the to and of in is for that you it on with this was be as are have at he not by but from my or
we an your all so his they me if one can will just like about up out what has when more do no
were who had their there her which time get been would she new people how some also them now
other its our than good only after first him into know see two make over think any then could
back these us want because go well said way most much very where even should may here need
really did right work year years being day too going before off why made still take got many
never those life say world down great through last while best such love man home long look
something use same used both every am come part state three around between always better find
help high little old since another does own things under during game thing give house place
school again next each mr without against end found must show big feel sure team ever family
keep might please put money free second someone away left number city days lot name night play
until company doing few let real called different having set thought done however getting god
government group looking public top women business care start system times week already anything
case nothing person today change enough everything full live making point read told yet bad four
hard mean once support tell including music power seen states stop water based believe call head
men national small took white came far job side though try went yes actually american later less
line order party run says service country open season shit thank children everyone general
trying united using area black following law makes together war whole car face five kind maybe
per president story working course games health hope important least means news within able book
early friends information local oh post thanks video young ago others social talk court fact
given guys half hand level mind often single become body coming control death food guy hours
office pay problem south true almost fuck history known large lost research room several started
taking university win wrong along anyone else girl john matter pretty remember air bit friend
hit needs nice playing probably saying understand yeah york class close comes idea international
looks past possible wanted cause due happy human members months move question series wait woman
ask community data late leave north saw special watch either fucking future light low million
morning police short stay taken age buy deal rather reason red report soon third turn whether
among check development form further heart minutes myself services yourself act although asked
child fire fun living major media phone players art behind building easy gonna market near non
plan political quite six talking west works according available education final former front
kids list ready sometimes son street bring college current example experience heard london meet
program type baby chance father march process song study word across action clear gave gets
himself month outside self students words board cost cut dr field held instead main moment
mother road seems thinking town wants de department energy fight fine force hear issue played
points price re rest results running shows space summer term wife america beautiful date goes
killed land miss project sex shot site strong account co especially eyes include june parents
period position record similar total above club common died film happened knew lead likely
military perfect personal security share st tv won april center county couple dead english
happen hold industry inside issues online player private problems return rights sense star test
view weeks break british companies event higher hour member middle needed present result sorry
takes training wish answer boy design finally girls gold gone guess interest july king learn
policy society added al alone average bank brought certain church east hands hot longer medical
movie original park performance press received role sent themselves tried worked worth areas
became bill books cool director exactly giving ground meeting provide questions relationship
september sound source usually value evidence follow lives official ok production rate reading
round save stand stuff tax whatever amount blue countries david drive eat fall fast federal
feeling felt green league management match model picture size step trust central changes england
forward groups hey key mom page paid range review science trade uk upon various attention
brother cannot character chief cup football hate james led looked lower natural october property
quality send style vote amazing august blood china complete dog economic hell involved itself
language lord november oil related serious stage terms title add article attack born damn
decided decision enjoy entire french january kill met perhaps poor release situation technology
turned website written choice code considered continue council cover currently door election
european events financial foreign hair increase legal lose michael pick race seem seven sign
simple simply staff super union walk washington bed began built career changed crazy daily
daughter december die difficult figure hospital knows loss modern ones paper parts popular
published safe starting systems version voice whose writing army australia earth forget goal
huge internet listen okay practice rules sea sir success towards waiting ways access base below
created deep followed la lol mark missing offer pass professional released risk schools sleep
table ten truth ball box build card cases dark district europe george india mine minister note
percent piece products recent seeing straight visit wall wanna wrote allowed boys culture etc
fans february gives growth included married officer pain paul places respect response river rock
shall speak specific standard tonight write album century charge cold create effect eight except
eye funny ii limited moving network peace provided recently required sales spent store student
tomorrow track via watching weight addition ahead allow anti association beat brown capital
chinese committee conference difference double expect gas island moved normal plans population
potential pressure radio russian station text treatment western ass beginning california
campaign certainly completely content credit cross described despite female focus hi husband ice
individual interesting join kept leading loved message miles nearly particular previous quickly
region reported section sort speed travel consider contact drop fair feet jesus kid link
positive sale throughout tour welcome absolutely additional beyond conditions earlier extra
forces immediately jobs leaving minute nature numbers quick sell significant studies unless
winning agree canada clean computer construction episode favorite income justice levels manager
movement photo posted safety san scene sold sounds spend statement sun teams ability announced
asking calling coach collection continued costs definitely designed expected friday gun happens
heavy includes knowledge particularly search subject train wide wow author centre claim dad
developed fear fit generally german global goals gotta hotel interested judge lady leader letter
lines material named nobody opportunity plus pre product regular secretary sister stories unit
workers annual anymore bar battle brain contract degree families features finished floor france
growing hurt image insurance majority meant opening opinion physical pro reach rule seriously
sports stupid successful active administration approach australian biggest cancer civil dance
defense direction independent master none reasons russia ship stock trump weekend wonder worst
africa awesome band beach cash clearly commercial compared effort ended fan fighting imagine
impact lack latest learning multiple older operation organization passed pictures protect secret
senior spring sunday telling wear activities address analysis anyway bought calls choose
christmas color commission competition details direct dream easily finish grand increased indian
literally luck marriage names necessary patients resources rich skin speaking supposed sweet
thus touch yesterday caught closed congress damage directly disease doctor doubt drink driving
established facebook feels fish gay germany glad greater grow largest machine notice overall
planning professor programs records reports shown sit trip associated basic captain carry cars
crime effective effects explain fully highly holding japan laws male mrs parties plant reality
smith spot texas winter worse advice agreement award block broken caused challenge characters
christian comment equipment eventually helped holy killing lived lots nation otherwise peter
prices primary purpose rates responsible shop showing sick teacher theory uses william agency
avoid camera catch cell coast comments drug economy environment executive foot hall mass meaning
mission nine officers operations politics pop produced ran saturday status therefore trial truly
weather activity app application claims coffee complex condition division evening flight freedom
google heat highest interview library located location murder obama offered putting queen
seconds showed sitting standing stars walking accept actual appear attempt broke channel
distance eating exchange fat fell finding glass learned losing mobile northern opened placed
powerful prior protection reached receive religious ride robert royal screen serve signed slow
species speech traffic tree types vs wearing whom wonderful agreed airport animals appears begin
benefits bottom cities demand engine everybody famous ideas investment keeping lie notes partner
plays raised runs sad solution songs sources southern square stopped structure thomas
traditional twice wind worry americans appeared becomes brand bus cent chicago count covered
critical digital forced fourth fresh lake mental mentioned missed mostly mouth owner photos
previously realize remain scale score separate smart starts surface throw tom totally twitter
views wedding acting actions african arms benefit budget click estate failed faith fashion
feature fund generation hearing hill jack larger louis metal mid paris profile pull push
returned rose seat seemed sexual target understanding village agent animal apply authority basis
becoming chris draw dude employees enter ex follows foundation gain http individuals japanese
leaders memory prime projects ring rise selling served silver soul spread supply waste weird
adult apparently artist chairman edition engineering grade happening healthy institute method
mike monday nations obviously option prison provides remains senate smaller somebody stone
strength users wild window winner arrived bag bet camp cast christ continues correct dangerous
ed extremely firm greatest handle improve indeed leaves movies negative prevent removed richard
spirit television till trouble usa videos advantage apart aware cat customers decide dinner
dollars eastern fifth function gift helping herself impossible influence items joe los marketing
mary materials nor produce progress proud require shooting shut standards tells thinks van wood
background birth bridge carried charles classes completed concept copy dear dogs drugs efforts
garden host housing inc israel journal labor leadership length lucky neither onto patient
possibly prove rare setting skills software thousands tough units ad alive apple balance
birthday bitch boss cards changing connection dress easier fellow florida horse knowing liked
magic managed map net owned request stick turns vehicle volume wake aid beauty believed billion
busy buying cells concerned conversation corner criminal cultural develop driver ends existing
farm file fix fly frank guide images investigation mexico operating paying presented raise
responsibility roll slightly suggest surprise technical thoughts treat unique variety violence
weapons yours youth appreciate bigger breaking discovered dont dry edge evil excited forever
funds helps henry injury iron lovely mad magazine martin models offers ordered parliament
prepared reference religion sites somewhere stated strategy teachers web wine accounts angeles
arm audience bay blog closer core democratic description dropped excellent exist figures forms
guard honest issued joined jones lee lies likes medicine mention mountain nuclear orders port
presence reaction reduce shoot sides solid spanish sport steps stress taste tea victory
afternoon assistant britain citizens classic clothes decisions electric emergency entered
entirely facts failure festival flat fuel harry hello houses ill initial introduced johnson kick
links mail massive matters pair picked pieces plane plenty prince proper providing quarter
regional scott session shape sky teaching toward transfer upper useful valley watched willing
windows zone accident advanced alternative anywhere articles awards bear boat bringing capacity
cheap climate communities discussion drinking duty fantastic feelings flying governor hundred
industrial joint mix museum options path plants policies promise proposed purchase rain remove
signs spending steel steve supporting terrible tired treated turning vice warm afraid arts beer
border canadian command crew crowd dating dick elements enemy ensure environmental filled fixed
forest intelligence intended labour limit moon ocean powers profit proof republican soldiers
suit wins appearance asian attorney banks behavior ben bodies brothers buildings chair creating
debt domestic expensive grew historical homes honestly honor im jump launch listed minimum
native noted originally planned pm ray sets suddenly supreme survey tech trees update user
writer yellow younger ancient attacks charges combined communication connected contains download
email ending exercise express flow formed girlfriend hero illegal increasing joke loan methods
officials performed planet relationships restaurant scotland selected shared shopping soft stuck
sugar suggested supported surprised taught transport accepted adding affairs allows appeal
applied appropriate artists boston ca confirmed device drama entry era factor feed golden grant
grown heads hoping keeps lawyer legs lying measures mistake ms muslim organizations platform
pool pulled regarding relations requires route saved schedule scientific shoes smoke squad teach
testing tests values walked williams ya abuse angry businesses candidate comfortable concern
developing discuss elections emotional et everywhere facilities falling fox guns hole holiday
interests internal ireland italian italy jersey laugh leg letters liberal listening ll loves
lunch max milk pack payment perform recorded relatively sector sharing snow storm streets strike
studio sub weak youtube actor advance apartment asia chain chapter committed confidence cook
cute equal fake finance focused hits identity journey kitchen korea leads maintain measure mm
numerous owners posts properties quiet revealed specifically split task taxes taylor twenty
urban acts affected aircraft applications approved approximately argument arrested claimed
conflict considering corporate debate determined distribution documents escape extended factors
faster fault fill films flowers friendly ladies lay lights millions mixed phase properly pure
reduced requirements residents revenue sam sat secure smile strange talent temperature thousand
tony troops truck votes ah authorities basically besides bird blame bob bowl causes chicken
collected context coverage determine display dying elected examples experienced falls false
fired forgot funding identified iii incredible inspired launched ma meat ministry mode neck
noticed novel obvious passing positions remaining scored shirt shots slowly stadium stores
surgery trading tuesday vision whenever worried zero alex allowing begins champion charged cream
crisis daniel delivered editor estimated eu giant iran jail jim kingdom literature mayor minor
moments opposite orange ourselves pages remained selection serving signal stream struggle
suicide talked theme thursday tiny typically un unfortunately usual vehicles virginia voted
voting walls wave alcohol assembly breakfast bright brings capable carrying chosen combination
conservative customer cutting desire destroyed draft drunk essential fail familiar finds granted
guilty humans hundreds id improved jewish largely laughing markets medium ohio opportunities
papers perfectly recommend referred relevant seek sending solo spoke stands talks ticket unable
upset wing answers birds bomb creative cycle dealing directed don educational entertainment
extreme facility fields goods hang holds info mainly maximum newspaper offering painting
republic reserve returns row salt scared scottish shares statistics switch territory threat
tickets wales adults affect appointed armed aside assistance bell blow bond boyfriend careful
circumstances communications concerns controlled corporation cry danger deals delivery deserve
devices dollar dreams empty enjoyed explained faces folks fucked gender instance kim kinda
matches mile motion moves nick pacific prize realized reasonable receiving register resolution
rural ryan saving sees singing spain tools typical universe warning wars wednesday admit
attitude branch brazil conducted decades dedicated definition drawing favor flag frame guest ha
heaven independence institutions jackson kiss load plot possibility random recovery rent replace
represent reviews scenes seeking senator sentence teeth tips trained understood academic academy
accurate achieve adam afford andrew assume bbc bottle bunch category chat cheese chemical
clinton competitive detail diet em favourite fruit harder index item lane mess navy normally
occurred opposition parent permanent personally pleasure prefer programme representative scheme
shift stood storage tank tend tight transportation ultimately unlike weekly yard anybody assets
basketball button candidates combat constitution consumer counter creation crown crying dc
defined depending depression describe drivers el employment exclusive excuse expert frequently
golf grace hopefully identify importance kevin laid latter manufacturing mining object partners
pattern performing personnel perspective pregnant premier promote revolution rooms severe
sleeping suppose tool tournament turkey ve victim victims agents amazon arrest attend ban
brilliant carbon catholic chose circle concert crash declared deliver depth deputy dirty doctors
earned electronic error existence experiences expression factory headed interior joy jr
legislation maintenance manner mate matt nearby noise origin pakistan panel personality plate
practices prepare relief replaced resistance retail rice roads roof shame ships somewhat staying
stronger surely tip updated writers absolute advertising agencies baseball bathroom bible cable
calm championship checked client constant da dates degrees democrats doors driven dumb empire
exciting expansion heavily hide incident irish linked manage messages michigan multi nfl
politicians print quit refused reporting sight significantly sing soviet weapon wet widely
worldwide ages anniversary attractive bike broad burn cake causing closely constantly contest
deaths depends drawn fees francisco haha hardly hat height hidden hong invited letting loud
manchester marine motor officially pc peak portion pounds princess protein puts raw reform
regions represented respond retirement sample seats secondary solar somehow stayed suffering
sydney tries ultimate unknown wilson wondering attached attacked automatically balls battery
bills blind breath brief carolina chest conduct debut decade destroy differences edward engaged
experts expressed external fantasy ft grab hollywood immediate introduction joseph license paint
pilot pink presidential principal recognize recognized registered regularly representatives
rising seasons shipping singer smoking steam suffered survive tall thats theatre therapy witness
adopted aim campus cap chances childhood clinical clubs comedy commander comparison covers dan
defeat defence democracy detailed entitled exact exposed fed fee injured jan jordan kinds lets
loans lock musical nose objects opposed organized plastic protected purposes quote recording
semi statements suspect swear techniques tie tim trend valuable wealth wise yards aged approval
aspects attempts bread burning champions contain convention dancing document eggs employee en
engineer equivalent facing fairly fingers ford founded functions gang graduate greek hanging
inner islands le lift marked memories miller monthly mountains neighborhood operate outstanding
permission porn racing recommended regulations reply republicans rid roman scientists shoulder
shower solutions sons stations stephen tower tradition visited visual wheel zealand achieved
admitted appointment authors barely bc bush cabinet celebrate challenges chocolate coal colour
contemporary criticism davis dna effectively eric extensive faced filed formation fought gained
gallery highway historic hunt improvement inch initially junior jury kong korean marks monster
obtained olympic philosophy pride promised repeat returning riding rough santa settlement smell
sought speaker studied suggests surrounding tone topic toronto universal vast visitors wanting
auto consistent continuing earn exists finger grey guitar heading howard ignore involving latin
lewis meal meanwhile meetings naturally necessarily offices pants partnership payments
percentage pocket practical primarily proved rape regardless relative represents rescue
resulting rush sarah sessions sharp simon soccer stable structures supplies symptoms temporary
tested trick attended audio bone brian bullshit chamber chart circuit clothing complicated
confused consequences defend divided elizabeth everyday extent fishing format gap gate gotten
harm healthcare household immigration impressive jews joining killer lesson limits loving ltd
managers membership miami mirror mount nights occur parking proposal province purchased
recognition reputation rolling shortly situations strongly tears technique thin tied accused
adventure argue assessment atmosphere awful bedroom belief bound breaks carefully cats ceo
choices closing cloud colorado colors contrast courses courts donald drew egg element elsewhere
establish extension files founder gear georgia hills hip hitting increases infrastructure jason
locations loose machines moral offensive pa package pointed poverty processes processing
qualified railway reaching ridiculous sensitive server shock silence soldier superior supporters
thick threw tons transition violent voters wash acid actress administrative alan alongside angel
anxiety babies bars bonus castle charity clients compare contained cooking covering curious
directors discovery discussed duke egypt encourage enforcement featuring finals flash formal
formula fort governments gray gross horses hungry informed innocent jeff losses luke mac math
minds mistakes mystery networks olympics palace passes penalty pet phones photography producing
protest publication rating refer respectively rome scheduled select silent spoken successfully
suffer temple tracks trail uncle unusual waters woods yo arrival asks assault awareness badly
bath captured chase components concrete dave deeply expectations explanation exposure featured
fiction guarantee happiness harris hearts horrible ideal illinois injuries islamic jimmy kelly
legend lieutenant mini mood muscle muslims passion picking pleased procedure producer pushing
rank replacement retired roles sand savings settled shadow singles tag tape thread victoria
visiting wage wings andy avenue bags beating believes blocks boring charlie checking clock
commissioner commitment confident containing copies crimes custom denied desk drinks ear
electricity episodes farmers fbi grounds gym helpful horror iphone iraq label liverpool locked
naked ny opens output persons pitch pizza plain pushed raising rear reveal romantic scores
sisters speaks stages strategic swimming welfare winners wire worker afterwards alright android
anger architecture assist attempted behalf belt capture centers ceremony comic cops cuts dallas
designer diamond disappointed dressed economics efficient electrical employed enjoying entering
essentially establishment expecting explains flower ghost guests handed hockey houston https
hunting industries islam jane judges kit lab languages maps min morgan moscow na nervous newly
odd op ordinary participate philadelphia prayer principles racist rarely references sexy skill
soil solve stomach struck studying suck supports trash ugly vegas virus walker whoever amounts
anthony arthur aspect banned boost bureau colonel comfort controls cousin crack deck demands
dies dragon dramatic dust dutch engineers evolution foods hired illness inspiration institution
kings knife lately lowest memorial mexican minority mum opinions patterns presents priority
promotion rail readers remote repair root saint steal stolen telephone tho titles trans ups vol
whereas abandoned acquired actors alexander alliance annoying ap bid bro buddy buried butter
cares columbia conclusion confirm congratulations contracts convinced crap crystal dean decent
decline delay describes desert downtown elite enemies forgotten forth gods hire hop hopes insane
installed israeli landing layer managing marry nah nowhere nurse obtain organic ownership
participants pennsylvania poetry pot pray printed recall rugby sake sheet signing smooth
spiritual stops string sudden sweden syria throwing thrown vacation abroad arab assigned
associate assumed atlantic bench bother broadcast bye cambridge citizen cleaning compete
consists consumers contributed cricket critics damaged disaster discover disney entrance equally
fallen figured fitness francis friendship gary handling idiot intense keys lawyers lifetime
liquid makeup medal mortgage narrative narrow nba observed occasionally pan physics posting
potentially reduction reflect refuse researchers resource roger ross sciences seattle serves
shell silly subsequent towns translation visible yep adds allen amendment angle arizona arrive
belong berlin bishop channels clark commonly connect defensive designs efficiency enterprise
experiment feb females findings firms forum gifts grass hence increasingly incredibly iv jay
journalist kicked lessons lists maintained mill mo occasion oxford pace passenger pen pope
possession pp races rapid regulation resident rocks shaped sixth spin styles subjects sucks
suitable thirty valid vital whilst agriculture alleged anna atlanta bands christians collect
commerce cop creek currency emotions exhibition fraud funeral genuine gordon honey honour hook
hunter immigrants improving instructions introduce kansas km lands legacy log matthew merely
monitor nov patrick phil prisoners programming publishing ratio regret rejected remind resort
resulted reverse routine scary seed settle sin spell summary survival sword tongue ward waves
wayne achievement anderson argued asleep austin automatic begun behaviour cd cents coat
comprehensive consent daddy destruction diego diseases divorce doc drove ears engage
extraordinary fate frequency gaming gene glory headquarters heritage initiative interviews jean
juice landscape logic meets melbourne microsoft objective organisation privacy procedures
profits reducing regard representing residence roughly salary scoring script searching sections
strip surrounded threatened transferred tube universities walter wisconsin writes ambassador ann
apps awarded banking breast cant carter chelsea chemistry concluded consumption corruption
cotton crossed detroit discount dozen engines epic exception exit expand fancy gorgeous grateful
heroes holes impression inches indicate input johnny josh knock leather lips luxury lyrics
manufacturers masters movements oct operated ought outcome painted poll preferred pulling ranked
referring removal rep reporter rio risks rob screaming sept sequence singapore stretch tear
tennis terrorist theater ties twelve versions virgin voices wishes wolf absence agricultural
asshole ate athletes bears blues boxes bruce bull cameras commonwealth contribute contribution
contributions couples delicious deny deserves ease extend fame flood generated genetic glasses
impressed indicated instant investors involves kate kills liberty maria ministers monitoring
occurs passengers photographs principle producers progressive punishment rally rapidly reader
representation restaurants reveals roots samples shops sum swing tail texts twin upcoming
veterans alert arena arguments aug billy boom boots brave claiming column commit compensation
composition computers conservation constitutional crossing defending density di difficulty
dropping drops elementary ethnic expenses fleet foster fuckin fundamental gen genius greatly
guidance hospitals infection instagram intention iowa jokes knee mechanical nigeria parks
participation periods precious pregnancy premium preparing pretend priest prominent proven
radical remembered requested residential reward rings robin russell satellite shake shore spots
stats struggling substantial teen temperatures transmission trap uniform wildlife wooden ads
aggressive anne answered apparent bang blast bones brands centuries communist complaint
component connections courage cure del desperate diversity duties encouraged eve faculty
feedback fighter frozen guards hiding humanity ian il innovation instruments invest jacket
justin legislative listing manual mothers murdered nursing occupied ongoing operator painful
pound preparation punch purple railroad registration releases rick romance submitted sufficient
survived suspended technologies tissue trailer trends trials ukraine underground versus virtual
walks wounded ali amongst announcement arranged arsenal attending attracted biological bite
blocked boards burned categories checks chip concerning dare database define discrimination
disorder distributed districts documentary domain dynamic edited engagement explore favour fewer
footage giants grave hamilton implementation indiana investigate jazz jon jonathan laboratory
lawrence lincoln literary mask massachusetts midnight minnesota mouse oscar packed piano praise
presentation psychology relation restrictions rocket ruin saudi sean sec secrets slave stability
steady stones symbol terminal toilet treaty triple unlikely updates vietnam viewed affair agenda
bat bow calendar cape collective conversations cooperation craft darkness deeper devil edit
enable equity estimates failing finishing fortune gates goodbye graham hardware hillary hurts
intellectual invite involvement kentucky madrid mi nuts oregon partly petition phrase physically
protecting racial rated regime rivers rounds ruled sa sauce seal separated shield similarly
slide stem summit talented throat tiger touched toy visits warriors wisdom accounting alien
attacking awkward beast beef candy carrier celebration celebrity certificate cited clay coaching
colleagues constructed dated dec default delhi derived dialogue disabled distinct drag educated
eligible estimate execution existed fifty followers fool framework franchise funded furniture
generations guaranteed integrated intelligent interaction jet journalists lifestyle lighting
lisa loop mall mp overseas performances philippines polish recommendations recover regarded
relax reliable rely remarkable responses ruling sacrifice se sole stopping strategies succeed
tables tale targets timing ton volunteers witnesses wore worship worthy acted alarm bass bloody
breathing butt characteristics cnn collaboration con consideration counts creates crucial
daughters dependent discussions drives dual edinburgh equipped expanded experimental feeding
filter galaxy globe grades greece gulf highlights hoped intent involve judgment kennedy knight
larry las lmao logo malaysia mature moore nazi netherlands odds peaceful philip photographer pin
prevention printing promoting publicly pump repeated replied requests revenge satisfied seeds
signals slip spaces spare specialist stocks stranger submit surprising tap thompson threats
tourism turkish volunteer acceptable allies attempting auction bonds challenging chaos churches
cleveland cm composed concentration copper corp corps counting credits dawn dispute earnings
editing executed firing fits frequent gardens gathered hilarious huh ignored improvements
investments isis margin mars maryland mechanism moderate murray oklahoma opera overcome parallel
passage pit psychological publications quest radiation shocked sized stroke stunning tanks tokyo
topics trains traveling treating tune utility vessel weed wherever acquisition addressed alabama
alice angels anime announce autumn backed barry bold borders breathe cameron choosing classical
classified clip coaches coins concepts conspiracy controversy convince cooper disappeared eh
encounter equality exam examination fails federation fi fiscal guardian hd homeless instrument
intervention jerry lover mainstream menu missouri mounted mutual nope occasions offense oral
panic pays peoples pursue realise refugees removing requirement responded rip ruined scope
segment spectrum stays ted terror uh va venture virtually waited warren worn yea ac accompanied
adams aids aimed alpha approaches arguing arrangement beliefs boats boundaries brick brooklyn
colleges considerable conventional danny des designated dvd emperor employers enormous errors
focusing forgive gains garage gathering guidelines handled hosted indians indonesia inquiry
inspector jumped khan li lion loaded lonely maintaining measured mercy nevertheless newspapers
outer oxygen pipe pissed poem powder powered promises quotes racism ratings reads recovered
refers roy rude screw seventh shelter signature sooner spider stewart strikes suggesting suits
toys tracking tribute trigger vary venue wages wells wheels ye abc abortion accuracy albert
applying artificial belongs beneath bitcoin bullet burns carl celebrated consistently conversion
copyright counties democrat deposit destination dirt diverse divine emails er exclusively export
fastest formerly functional gather grandfather habit harvard indicates isolated jealous knocked
landed laughed laura lazy mama marshall mitchell modified municipal naval neighbors nelson
neutral noble oldest pat picks poland popularity professionals pussy reactions relate robot
sacred securities shoe speakers springs spy steven suggestions supplied susan suspension
terrorism terry toxic treasury tunnel unions upgrade warrant wider wound aaron actively
afghanistan ai applies arrangements asset assuming backing baker barcelona blessed brazilian
brush burden campbell carries casual certified charter chef civilian coalition cock complain
complaints controversial denver describing differently directions discipline discussing
disgusting dj dominant earning emma essay expense explaining furthermore graphic greg healing
hiring hosts implemented instantly invasion jacob jumping laptop legendary leo maker margaret
mario opponents outdoor palm parker photograph pole pub quarters queensland rangers ranks
reception recipe regulatory reviewed rolls rubber secured serial settings shed snake sponsored
stealing strict subsequently substance suggestion switzerland syndrome tasks trips ultra
unexpected usage utah worlds accidentally affordable amateur appeals argentina baltimore batman
bearing beats bin biology bobby briefly canal cancelled charlotte cheaper christopher climb com
competing completion cruise custody delete demonstrated departure developers developments dig
eagles employer evans explosion fever fluid folk generate gop handsome ho holidays hotels
imagination integration integrity interpretation leaf legitimate lightning loads longest magical
mills motivation nasty oliver outfit pension permit perry plates pleasant portrait productive
reminds reserves ron safely shirts shorter slight socialist streaming sue targeted tension
thailand theories touching transactions twist ugh unemployment unity useless viewers winds woke
wtf abilities advocate aims arc backup beaten bitter blown branches campaigns chips cia clever
clinic closest collections continuous converted correctly creator creatures criteria declined
detective difficulties disability dish douglas du duck egyptian ep evaluation excess farming
fence fifa fighters flights forcing forming franklin fred gradually gravity habits hawaii
highlight holder hood hung identical imperial investigations jose ken legally lied listened
males manufacturer meters nail nasa negotiations nonsense ontario operational orleans owns
phoenix playoffs poet quoted relating repeatedly robinson rolled scientist sink skip slavery
snap sorts souls stole swedish swim swiss tennessee transaction transformation veteran
vulnerable wealthy additionally amy attract barbara beta blowing bored bronze bug caring
catching cave cheating chronic cleared communicate convicted cultures dealt delayed demonstrate
departments depend developer diagnosis dismissed distinguished dose eighth experiments fa flesh
flip forty generous germans hated hr implement incorporated influenced jerusalem kidding laser
loyal marijuana md mentally missions occupation opponent paintings patch patience pic pointing
pollution precisely prisoner privilege proposals protests punk radar regards relatives resist
solely stepped striking terrorists th tourist transit trucks trusted vessels villa volumes
websites wireless wondered wrap wright yoga adopt airlines alaska albums anytime bacteria beings
beside blade boot bottles bucks bulk camps cargo census christianity coastal coin colored
commentary confusion congressional corn cried customs dealer deemed destiny distant electronics
emerging emotion emphasis ethics excitement exploration fights filling filming glasgow graphics
helen humor insight invested jennifer lit louisiana mar marie meals mississippi nerve netflix
nightmare operators overnight partially participating pie platforms populations poster pr
practically preserve produces qualify raid ram ranging ranking receives respective restricted
routes samuel sandy scenario sheep situated slaves sony spotted spreading stanley sustainable
sustained taxi themes threatening tobacco trace trapped turner uncomfortable wasted weakness
widespread xbox accepting accessible acknowledge advised advisory animation assignment balanced
bare basement bases battles bias birmingham bits cancel carpet ceiling cherry chill
classification clue codes cole collapse collecting compound conscious consecutive contents
costume craig deleted devoted didnt displayed dominated earl endless escaped examine floating
garbage gospel grain grid grows heating identification knees lap lions liver metro metropolitan
mines mixture nominated oak parliamentary patent perception physician portland proceed
proceedings pupils reserved restore rifle rival rs runner sadly sc shoulders significance sits
sizes slept soap spray stored stressed structural suite tbh tropical ukrainian unnecessary verse
victor vintage warned watson acres adapted adoption anonymous antonio approaching artistic
attendance aviation barrel beds beloved bless boxing celebrating charging chemicals chuck cinema
colonial comics compliance contrary controlling corporations couch crush dam decrease defeated
diabetes dressing expanding fears fires genre gentle grammar hiv idk illustrated invented jake
jam jamie jessica keith kent layers lease lens licensed loyalty madison magnetic metres monsters
mysterious notion partial piss placing propaganda rat reflection reminded resolve revolutionary
scandal shine si simultaneously substitute surveillance tactics testimony thai treasure trophy
tweet tyler underlying unfair villages von wa acceptance accidents affects annually apologize
appreciated approached arriving ash aunt benjamin blake bubble buyers casino charts clouds
connecting counsel creature deadly decides der desired determination embrace emerged exhibit
flew gentleman gm halloween hammer hitler hosting icon imposed indigenous infinite installation
inter interactions introducing iranian kicking laying legislature liability maine makers
manhattan marathon marvel michelle moreover mps neil organisations ours parade paradise
perceived pics planes politician preliminary premiere presidency reaches react realistic remarks
retain roberts rocky russians saints satisfaction scratch shade sheets sheriff shy sometime
spirits sporting strictly sunshine teens thou tier tommy travelling vancouver vocal warrior
worries yield accomplished admission adventures aka appearing bacon barrier belgium believing
blacks bombs burst caps casting cattle cc classroom collins colours compromise convenient costa
criminals crop earthquake elderly eliminate embarrassing farmer finest grants harbor harvey
hates incidents inform ion jeremy lesbian lovers lt mathematics medication minded morris norway
par podcast portfolio productivity promoted protocol quietly rachel replacing responsibilities
salad scholarship screening sends smiling soup southeast stake stating strain suspected swift
tackle tigers timeline torture traded translated tricks twins urgent vegetables vertical
violation wallet welsh workshop wrapped aboard abstract accent addiction associates awake beam
beans binding blank buffalo cbs commons conservatives contacts conviction corrupt cow curve
depressed deserved dining disorders duration eddie emily encouraging farms fifteen flows ga
genes graduated grandmother harsh heights horn hurry immune inflation ingredients inspection
install instruction intensity inventory investigated invitation judicial justify kyle lakes lean
lecture libraries logical mason meaningful migration missile motivated muscles nancy norman
northwest nurses organ patrol pearl peer pepper pig pile plug provision releasing requiring
revised rod scream stairs staring statistical sticks strangers succeeded sweat switched syrian
tattoo teenage thunder tours tragedy trauma vincent wrestling zoo accordance acquire activist
activists addresses alike applicable arrow availability aw ba bend boundary breach cabin cage
chancellor cheers circles closet combine companion comparing consciousness consultant controller
corresponding courtesy cuba damages demanding disc dishes dozens eagle eaten embassy engaging
fascinating financing fitted flexible gaining gentlemen goodness guilt haven helicopter homework
households hp iconic infected keen kenya lesser liberals lip mandatory manufactured mechanics
mere miracle mt mud murphy nathan observation operates owe permitted phenomenon pittsburgh
playoff precise profession prospect protective providers publisher putin reportedly retreat
rookie sandwich seeks sentences separation sexually ski skilled sterling stuart surgeon theft um
understands valve visa washing adjacent agreements appreciation arabia athletic authorized
banner beijing blew blocking brad caribbean charm chasing climbing colony complaining cookies
cruel curriculum deadline deer delta demanded dive divide easter electoral eleven entity
excessive exercises feminist governing ham heal interface ios jewelry journalism juan julia
jungle linear mg occasional oriented pete pilots prayers predicted pressed preventing prof
provisions pursuit rap reflected reminder restored resume rev richmond ridge samsung scholars
sealed sounded sri streams strongest tends tribe unfortunate variable victorian worrying xi
zones ace adjusted alternate arrives artwork ashley athlete attraction babe bankruptcy canon
capabilities cared catherine chains closure cognitive competitors connecticut convert cooked ct
cups deciding defender dental diplomatic divisions drum editorial enabled entertaining est
establishing eternal freeze generic grandma grip handful happily harmony hmm humble hurting
hybrid intentions investing keyboard lasting locally loses mild minimal mixing molecular nearest
neighbor noon nowadays openly overview pairs palestinian parish pathetic poems possibilities
potato potter preference promising proportion purchases rage rd reflects respected restoration
selfish sergeant silk stamp throne thy urge voter warner wasting witch advantages ally archives
array assisted backs belly booth breakdown bridges brutal calculated cam centres chapters
citizenship civilians cliff conflicts consensus cycling declaration dennis derby distinction
donations dragons draws examined facial faithful fatal fig fitting genuinely hardest holland
honored hunger hurricane implications import innovative ipad jurisdiction laughter lemon les
lifted loading lung matching mighty monetary novels nutrition ore os outcomes outta pine polls
poorly portugal pose pour proteins provider publish purely ralph rental resolved rewards sang
seemingly senators severely shark shocking southwest ss studios survivors tales technically
titled traditions unlimited washed watches advise anxious appearances bee bombing cafe carlos
challenged cigarettes colin consisting cult dairy dakota darling delighted delivering destroying
diary disagree disappear drill earliest edges entries euro evolved exports fixing fl flags flies
forecast fr governance heated hug importantly indicating indoor influential intend invisible
jeans jets julie karen lasted lawsuit leak lighter lucas marcus mentions meter mice musicians
olive passionate potatoes prevented receiver recommendation riot rogers roster safer sells
sentenced servant setup skull slot smash statue surprisingly surrender suspicious teenager
tender thoroughly todd treatments tweeted vacuum variations vi wi wont acknowledged advances
agrees allegations anticipated approve architect basin beneficial bleeding breed breeding bride
broadway bros bud butler careers cartoon celebrities chick coke comparable confirmation console
contractor contributing diameter dubai dublin dump duo dynamics elephant enhanced essays
exhausted fabric fabulous fairy fathers focuses fold freak frustrated gambling gently glorious
grief harrison historically hub hughes inevitable investigating kg labels lacking laughs layout
lined lodge lords merchant merit micro myth nintendo objectives obsessed organised overwhelming
pale particles pastor penalties permanently pets pockets poison predict presenting presidents
pressing prints provincial raped realised rebel repairs rotation separately shaking shaw
societies solved starring struggles subtle tastes throws toll tooth torn tragic trainer
transformed unbelievable underneath variation viewing viral warehouse wears widow wives adjust
administrator affecting allied altogether animated answering assess assumption assured austria
avoided avoiding basket beard bio blanket brains bucket burger capability charming chiefs
commented computing concentrate conducting consequence continent cookie cruz curse displays
drain emissions ethical excellence flame forests freely fruits grabbed graduation hint horizon
hostile imagined inhabitants ink inn intel kicks legends lo lucy magazines matrix measuring
miserable momentum monkey montreal motorcycle nationwide nest newcastle nicely ninth nomination
notable obligation optical outlook penny petty phd ports preserved programmes prospects
publishers quantity quantum rainbow rebels recognised reed reign responding retained rises saves
scan scare sectors shorts span specialized spencer submission sunny supporter te testament toe
tops tremendous valued wounds ab accommodation achievements addressing adorable allegedly
ambulance ar ashamed assure bailey ballot batteries blessing btw cemetery chambers cheat cheer
chile cigarette compact completing consulting cooling corners deficit demo demon demonstration
detected detection doll donated elaborate elder encountered expertise exploring fc fiber filmed
fried grocery guided guinea halfway happier heels holmes hull independently indication insisted
instances intensive interactive intimate laundry lbs lifting linda martial nigerian northeast
observe packing panels password pokemon politically presumably pretending priorities pronounced
prosecution proves pulse purchasing qualities queens rational realm reforms revenues rides
ripped rope shadows shout sierra smartphone specified spectacular stan streak subscription
switching technological temporarily tolerance tourists traditionally traveled treats unhappy
whites yup accomplish adequate alter apology arkansas attributed beg belonging booked bout
bowling brass buzz clarke comeback cos crops declare designers detect diagnosed diesel
dimensions dip disturbing doesnt dot dresses dylan effectiveness eliminated ellen embarrassed
exceptional filing fled foul frankly freezing graph hack hannah hatred ignorant influences
interact judging knights lamp limitations majesty measurement measurements median medieval milan
mobility montana murders nc ne nyc omg orientation oven owen passport penis pills planets
proceeds rabbit raises ranges rats retire rhythm ruth savage servers shook shooter siblings slim
someday sophisticated spam speeds stack stance static subway supportive surgical symbols tablet
tent thesis tide travels wallace warfare warming weekends withdraw withdrawal youngest aging
airline alternatives anyways argues audit authentic ave backwards bi blonde blows bolt brooks
bugs bust clearing clips collar columbus comply cope counted crashed creepy cum denmark divorced
donate drawings dried ebay echo editors edwards emotionally enhance experiencing extending
finale flavor floors freaking gloves harper hart ignorance ignoring immigrant induced inspiring
intermediate invention ip jesse joins joking lgbt likewise lineup logan magnificent mathematical
meantime nails nevada newest nonetheless nut opposing origins orlando physicians pipeline
placement planted pricing pt puerto questioning recreation renewed resigned rt shallow shanghai
shitty singh sins sketch smells soda spite sponsor strengthen strings sunset taiwan thanksgiving
thee thermal trades transform witnessed workplace yelling yorkshire achieving aliens amsterdam
analyst arabic arctic assists bennett bristol burnt buyer calories cannabis cease championships
chapel cloth conferences considers container cowboys crushed deployed differ dimensional eager
elect elevated essence executives flames fork fur gps harold harvest headline hudson hype
identifying impacts insist jo junk kenny kidney ladder lloyd lobby marc mechanisms mineral mob
modest motors mph navigation nicholas orbit paragraph passive peninsula phillips pill pork
portuguese profitable provinces ranch rays reasonably reject remainder schemes screens seized
semester sentiment servants shipped socks sp sr suited supplement surviving thereby threshold
til tin tires tribal tribes trunk uncertainty vampire varied verdict abandon accommodate
accordingly aesthetic algorithm altered anchor angela apr arch associations au audiences axis
badge bernard bizarre bounce broadcasting bs bullets buses cannon carol carriers chairs cleaned
complexity confusing consultation continental convenience deliberately diamonds diana dictionary
dignity dimension disappointing diving doug duncan ego enthusiasm environments equation extract
favorites ferry fisher flexibility flowing fm fridge functioning fusion gauge goat graduates gut
heck helmet holders ideology idiots inclusion initiatives innings insects instructor isolation
ive justified keeper lamb liar machinery mansion mega mercury namely nbc needing nerves nhl
observations ordering palmer paths peers pending platinum possess praised premises probability
ps questioned refuses resignation rider ritual ruins shelf slam stakes starter sticking
subscribe superman surfaces ta territories tire tl towers transfers utterly voltage warn width
workout aa abu activated adaptation advisor aluminum apartments attitudes attorneys bail
barriers belonged bradley brandon broader buck cal caroline characterized civilization congrats
contractors creativity dealers delicate den derek desires disappointment disk enters evaluate
formally frames goddess gov hampshire harassment hats hugh insert joan lebanon leeds legit
leonard liquor loser malcolm massage matched messed milwaukee musician nato nephew notably
orchestra oz packages pad pakistani participated precision preservation priests privately prizes
pulls qualifying reasoning relaxed reporters roses rumors sail salmon secretly seller sen seo
sheer shifts simpson smallest specially stark struggled sympathy tan teenagers theoretical thumb
timber transparent travis tweets tx upside urged visitor vitamin void voluntary wheat whip wipe
wolves wrist abused acute admiral amanda arnold arrange banana behave betting blair bo borrow
camping capitol celtic chan chin civic clerk conclusions considerably contacted cottage coup
criticized crude dash decreased defended demons deposits disclosure disposal distinctive
documented donation dragged drone encounters ensuring enterprises escort exams firmly flour gdp
geneva hindu holdings indie indirect inspire institutional interim interviewed java jefferson
jerk karl kindly kindness leaked locals lottery louise magnitude mc minus nhs noting nude organs
outlet outlets parameters pause pledge portal prescription protesters proving publicity punished
puppy recruitment screwed shades shakespeare silicon slice spelling spurs subscribers surveys
survivor telegraph tits vaccine vinyl westminster wished wonders accurately adelaide affiliate
alfred asylum barn bent bernie brussels cathedral centered clause cluster complained compounds
consistency cr cracked cylinder dancer deaf debts denial digging dock entrepreneur evident
expectation expedition expressing extends facilitate failures feat fossil founding freight
generating goddamn guides honesty inappropriate infant initiated injection instrumental insult
interference interstate julian launching liking linux luis mates mediterranean neat negotiate
neo nicole obligations offset outbreak pal palestine perfection pigs pirates posters practicing
praying probe prohibited projected propose quarterly recipes recruiting refusing rehabilitation
reid remix resistant reynolds riders robots rockets roller sailing shapes skinny slipped sneak
solving sore spark speculation steep stevens straw successor targeting triggered troubles
uncertain upload vector violations weigh whatsoever wicked abraham absent acoustic adapt
ancestors archive atomic bean bicycle bryan bump buttons cart circus claire cocaine cohen
colleague compelling compiled complications construct cord crowded cyber dale debates defendant
delays dense desperately doctrine expose financially freshman furious gameplay geography gig
habitat harbour hazard hydrogen implies intact intake irrelevant jaw jin kitty lauren lawn
manufacture martha medals mercedes mistaken moses nashville nebraska needle ol olds organize
ottawa oval pity pond porter portions prey prophet raymond recalled reduces referendum refugee
regulated rounded ruby rushed sanders satisfy scales seasonal segments sensible sequel shifted
shifting shining slower spinning stanford stepping teammates touches township travelled twisted
usb vienna wade whale writings admire af amber ankle armor autism bachelor berry billions brady
brisbane bulls bullying capitalism caution certification characteristic clan clash columns
compatible concerts condemned configuration continuously convincing coupled curiosity delight
determining entities exceptions explosive flooding fortunate fortunately foundations frontier
frustrating frustration geographic glenn grande grasp handy hardcore harmful headache hers
hispanic incentive inclusive infections jackie joel kissing lanes licence lungs madness mandate
manga memorable merger minorities nj occurring organizing performs ph po poker portable priced
quebec randomly rankings realizing resign revealing rico robbery rub runners sally scattered
scout searched sexuality shouting slap steak succession superintendent suspicion sweep tactical
talents therapist thereafter thorough tuition tumor usd variables varying wholesale wwe
administered affiliated apples architectural artillery assembled bangladesh barack beaches bees
boarding bothered canvas canyon casey cheek chen cincinnati circular circulation clearance
closes coincidence comedian commands commissioned concentrated conscience cooler countless curry
dame deceased dedication defining detention disputes drake employ enforce explicit explicitly
eyed florence flu forbidden fraction hes infantry integral investor janet judged katie kidnapped
lectures lightly linking maintains marble maritime melt modes monica mumbai nominee oath offence
packaging patriots pee pillow pirate polar prediction preview processed pursuing puzzle rapper
rebecca reconstruction renowned revelation sara scholar sharks shoots skirt socially spa spike
sprint stir stuffed substantially suburbs superb supposedly tab tendency theirs toast toes
touchdown traits trek tricky triumph uber underwear unto viable waist welcomed wit wreck absurd
accessories adrian advocates ag ambitious amid annoyed appealing appointments assumptions ballet
bargain binary blend blogs brake builds businessman cab ch chi col collision colombia compassion
consumed corrected correction cough cousins critic czech defenders denying depot distress
documentation doubts dramatically drank dudes eats elegant elevator ellis exchanges excuses
execute factories feast finland frederick frost goin herald hike hollow homeland imported ing
internationally iraqi itunes kane kissed lame licensing lily limiting locker mainland marking
meditation messenger metals missiles munich norwegian pencil philosophical pierre pipes plasma
plea punish purse quarterback reagan ref relieved replies reservation rhetoric rivals rushing
salvation sanctions secular sensitivity shane sigh sixteen sovereign specifications spends
spouse stat supervisor synthetic teaches tense terrifying toyota tracked traders troy varieties
vegan waking walmart wang wilderness admits adviser aggregate anal anatomy annie announces
applicants automobile barnes breasts cement chess citing colonies composite consequently consist
councils cox curtis decorated delegates dreaming dull enables fare fashioned feared float
generator grind grinding grove guessing gum hobby hunters idol illusion incorrect jun junction
lance leap locate locks lou lynch manages masses medicare modeling motive nazis neighbourhood
networking newer newton oppose optimal overtime packs permits playstation pops postal
predictions prep profound prosecutor rebellion recipient refund remembering rescued risky robust
scam sci sep shareholders sided simulation sober spice squeeze storms supervision suspects swap
swept terrain terrified themed threaten thrilled towel trio tubes unconscious und varies
vegetable verified vibe virtue wifi wishing workforce zombie acre airports alot amen andrews
arise ashes automotive battlefield begging berkeley bloom bore bundle butterfly buys casualties
catches chad clown committees conjunction costly cows cries cuban cycles darker davies descent
desktop dial directory disabilities discharge discusses dodge downs drilling drums elimination
enjoys es espn ginger governors guild halt han henderson ibm imaging implied impress inability
incoming isaac jar kay lb leicester liam litigation mentor merchandise minerals miners monk
neighborhoods ni noah norm obtaining occupy offended orthodox overhead pac painter perth pierce
pistol printer prone raiders readily reflecting regiment remembers reunion revival sanctuary
satan satisfying seas securing sensors seoul shells siege sixty sleeve sonic soundtrack speeches
spine steering substances sullivan sustain tenure texture thankful translate treasurer triangle
unclear upgraded venezuela venice vladimir wizard yankees
"""
)
